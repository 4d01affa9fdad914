;;; emacs-test.el --- Batch checks for editors/emacs/hikyaku-mode.el -*- lexical-binding: t; -*-

;; Run by tests/editors/run.sh as
;;   emacs --batch -Q -l tests/editors/emacs-test.el
;; Prints one "PASS: ..." / "FAIL: ..." line per check on standard output.

;;; Code:

(require 'cl-lib)
(require 'bytecomp)
(require 'subr-x)
(require 'imenu)

(defvar hk-root
  (expand-file-name "../.." (file-name-directory (or load-file-name buffer-file-name))))

(defvar hk-failures 0)

(defun hk-report (ok fmt &rest args)
  "Print a PASS or FAIL line (per OK) with the message FMT and ARGS."
  (unless ok (setq hk-failures (1+ hk-failures)))
  (princ (concat (if ok "PASS: " "FAIL: ") "emacs: "
                 (replace-regexp-in-string "\n" " " (apply #'format fmt args))
                 "\n")))

(defun hk-file (rel)
  (expand-file-name rel hk-root))

;;;; 1. Byte-compile with warnings as errors, into a scratch directory.

(defvar hk-tmp (make-temp-file "hikyaku-emacs-test" t))
(defvar hk-elc (expand-file-name "hikyaku-mode.elc" hk-tmp))

(let* ((src (hk-file "editors/emacs/hikyaku-mode.el"))
       (copy (expand-file-name "hikyaku-mode.el" hk-tmp))
       (byte-compile-error-on-warn t)
       (byte-compile-warnings t)
       (ok nil)
       (log ""))
  (copy-file src copy t)
  (setq ok (condition-case err
               (byte-compile-file copy)
             (error (setq log (error-message-string err)) nil)))
  (when (get-buffer byte-compile-log-buffer)
    (with-current-buffer byte-compile-log-buffer
      (setq log (concat log (buffer-string)))))
  (hk-report (and ok (file-exists-p hk-elc)
                  (not (string-match-p "Warning\\|Error" log)))
             "hikyaku-mode.el byte-compiles with byte-compile-error-on-warn t%s"
             (if (string-empty-p (string-trim log)) ""
               (concat ": " (string-trim log)))))

;; Load the compiled file if there is one, the source otherwise, so the
;; remaining checks still run and report.
(load (if (file-exists-p hk-elc) hk-elc (hk-file "editors/emacs/hikyaku-mode.el")) nil t)

;;;; 2. Mode set-up.

(defun hk-visit (rel)
  "Visit REL (relative to the repository) fresh and return its buffer."
  (let ((old (get-file-buffer (hk-file rel))))
    (when old (kill-buffer old)))
  (find-file-noselect (hk-file rel)))

(with-current-buffer (hk-visit "tests/editors/sample.hk")
  (hk-report (eq major-mode 'hikyaku-mode)
             "auto-mode-alist: sample.hk opens in hikyaku-mode (got %s)" major-mode)
  (hk-report (derived-mode-p 'prog-mode) "hikyaku-mode derives from prog-mode")
  (hk-report (and (equal comment-start "# ") (= hikyaku-indent-offset 4)
                  (not indent-tabs-mode))
             "comment-start \"# \", indent offset 4, spaces (got %S %S %S)"
             comment-start hikyaku-indent-offset indent-tabs-mode)
  ;; The syntax table alone: # comments and "..." strings.
  (hk-report (and (eq (char-syntax ?#) ?<) (eq (char-syntax ?\n) ?>)
                  (eq (char-syntax ?\") ?\"))
             "syntax table: # starts a comment, newline ends it, \" delimits strings")
  (let ((names (mapcar #'car (imenu--generic-function imenu-generic-expression))))
    (hk-report (and (member "Tests" names) (member "B-san to my phone" names))
               "imenu lists rules and tests (got %S)" names))

  ;;;; 3. Faces at the positions listed in expectations.txt.
  (font-lock-ensure)
  (let ((lines (with-temp-buffer
                 (insert-file-contents (hk-file "tests/editors/expectations.txt"))
                 (split-string (buffer-string) "\n"))))
    (dolist (raw lines)
      (unless (string-match-p "\\`[ \t]*\\(#\\|\\'\\)" raw)
        (let ((f (mapcar #'string-trim (split-string raw "|"))))
          (if (/= (length f) 7)
              (hk-report nil "malformed expectation line: %s" raw)
            (let* ((lnum (string-to-number (nth 0 f)))
                   (needle (nth 1 f))
                   (offset (string-to-number (nth 2 f)))
                   (spec (nth 4 f))
                   (desc (nth 6 f))
                   (where (format "line %d \"%s\"%s" lnum needle
                                  (if (zerop offset) "" (format "%+d" offset))))
                   pos)
              (goto-char (point-min))
              (forward-line (1- lnum))
              (if (not (search-forward needle (line-end-position) t))
                  (hk-report nil "%s (%s): needle not found on the line" desc where)
                (setq pos (+ (match-beginning 0) offset))
                (let* ((face (get-text-property pos 'face))
                       (faces (if (listp face) face (list face)))
                       (why nil))
                  (dolist (cond (split-string spec))
                    (unless why
                      (cond
                       ((equal cond "-")
                        (when face (setq why "expected no face")))
                       ((string-prefix-p "!" cond)
                        (when (memq (intern (substring cond 1)) faces)
                          (setq why (format "expected no %s" (substring cond 1)))))
                       ((not (memq (intern (string-remove-prefix "+" cond)) faces))
                        (setq why (format "expected %s" cond))))))
                  (hk-report (null why) "%s (%s: %s)%s" desc where spec
                             (if why (format ": %s, got %S" why face) ""))))))))))
  (kill-buffer))

;;;; 4. Indentation.

(with-current-buffer (hk-visit "tests/editors/indent-input.hk")
  (let ((want (with-temp-buffer
                (insert-file-contents (hk-file "tests/editors/indent-expected.hk"))
                (buffer-string))))
    (indent-region (point-min) (point-max))
    (let* ((got (buffer-string))
           (gl (split-string got "\n"))
           (wl (split-string want "\n"))
           (diff (cl-loop for i from 0 below (max (length gl) (length wl))
                          unless (equal (nth i gl) (nth i wl))
                          collect (format "line %d: got %S want %S"
                                          (1+ i) (nth i gl) (nth i wl)))))
      (hk-report (null diff)
                 "indent-region re-indents indent-input.hk to indent-expected.hk%s"
                 (if diff (format " (%d lines differ; %s)" (length diff) (car diff)) ""))))
  ;; Typing a closing brace on a fresh line dedents it (electric indent).
  (goto-char (point-min))
  (search-forward "expect keep")
  (end-of-line)
  (newline-and-indent)
  (let ((after-newline (current-column)))
    (insert "}")
    (indent-according-to-mode)
    (hk-report (and (= after-newline 4) (= (current-indentation) 0))
               "new line in a block indents to 4, a closing brace to 0 (got %d, %d)"
               after-newline (current-indentation)))
  (set-buffer-modified-p nil)
  (kill-buffer))

(delete-directory hk-tmp t)
(kill-emacs (if (zerop hk-failures) 0 1))

;;; emacs-test.el ends here
