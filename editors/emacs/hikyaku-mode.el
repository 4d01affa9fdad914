;;; hikyaku-mode.el --- Major mode for Hikyaku rule files -*- lexical-binding: t; -*-

;; Keywords: languages, mail
;; Version: 0.1.0
;; Package-Requires: ((emacs "25.1"))

;;; Commentary:

;; Syntax highlighting and indentation for the Hikyaku rule language
;; (files ending in .hk).
;;
;; Lexical notes the mode relies on:
;; - `#' starts a comment that runs to the end of the line;
;; - "..." strings and """...""" blocks (which span lines) take the escapes
;;   \" \\ \n \t \r \u{...} and ${name} interpolation;
;; - `/' never means division: outside strings and comments it opens a
;;   regex literal /.../ with optional flags i m s x, where \/ is a slash.
;;
;; Install: put this file on `load-path' and add (require 'hikyaku-mode),
;; or (autoload 'hikyaku-mode "hikyaku-mode" nil t) plus the
;; `auto-mode-alist' entry below.

;;; Code:

(defgroup hikyaku nil
  "Major mode for Hikyaku rule files."
  :group 'languages
  :prefix "hikyaku-")

(defcustom hikyaku-indent-offset 4
  "Number of columns per brace level in Hikyaku rule files."
  :type 'integer
  :safe #'integerp
  :group 'hikyaku)

(defface hikyaku-regexp-face
  '((t :inherit font-lock-string-face))
  "Face for regex literals such as /^\\[spam\\]/i."
  :group 'hikyaku)

(defface hikyaku-escape-face
  `((t :inherit ,(if (facep 'font-lock-escape-face)
                     'font-lock-escape-face
                   'font-lock-constant-face)))
  "Face for escape sequences such as \\n or \\u{1F600} in strings."
  :group 'hikyaku)

;;;; Word lists

(defconst hikyaku--keywords
  '("import" "const" "on" "rule" "when" "if" "else" "test")
  "Structural keywords.")

(defconst hikyaku--operator-words
  '("and" "or" "not" "is" "contains" "starts" "ends" "with" "matches" "in")
  "Operators spelt as words.")

(defconst hikyaku--stages
  '("connect" "helo" "mail" "rcpt" "data" "deliver" "retention")
  "Stages named after `on'.")

(defconst hikyaku--actions
  '("keep" "fileinto" "forward" "notify" "reply" "reject" "discard" "skip"
    "stop" "expand" "strip" "add" "remove" "flag" "refuse" "tempfail"
    "expunge" "log")
  "Actions.")

(defconst hikyaku--modifiers
  '("every" "list")
  "Action modifiers that are not also fields.
The others (subject body from to attachments header) are fields too
and are highlighted as fields.")

(defconst hikyaku--fields
  '("subject" "from" "to" "cc" "bcc" "reply_to" "sender" "header" "headers"
    "body" "size" "attachment" "attachments" "has" "priority" "envelope"
    "recipient" "client" "auth" "tls" "spf" "age" "seen" "flagged" "folder"
    "plan" "hops")
  "Built-in message fields.")

(defconst hikyaku--properties
  '("local" "domain" "name" "addr" "ip" "helo" "user" "from" "to" "count"
    "type" "raw" "retention" "max_size" "quota")
  "Properties written after a dot, as in from.domain.")

(defconst hikyaku--constants
  '("true" "false" "pass" "fail" "softfail" "neutral" "none" "temperror"
    "permerror" "high" "normal" "low")
  "Booleans and enum values.")

(defconst hikyaku--test-statements
  '("message" "file" "envelope" "expect" "suppressed" "stage")
  "Statements that are keywords inside a test block.")

(defun hikyaku--words-re (words)
  "Return a regexp matching any of WORDS as a whole symbol."
  (concat "\\_<" (regexp-opt words t) "\\_>"))

;;;; Syntax

(defvar hikyaku-mode-syntax-table
  (let ((table (make-syntax-table)))
    (modify-syntax-entry ?# "<" table)
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?\\ "\\" table)
    (modify-syntax-entry ?_ "_" table)
    (modify-syntax-entry ?' "." table)
    (modify-syntax-entry ?/ "." table)
    (modify-syntax-entry ?$ "." table)
    (modify-syntax-entry ?. "." table)
    (modify-syntax-entry ?~ "." table)
    (modify-syntax-entry ?! "." table)
    (modify-syntax-entry ?< "." table)
    (modify-syntax-entry ?> "." table)
    (modify-syntax-entry ?= "." table)
    (modify-syntax-entry ?- "." table)
    (modify-syntax-entry ?, "." table)
    table)
  "Syntax table for `hikyaku-mode'.")

(defun hikyaku--escaped-p (pos)
  "Non-nil if the character at POS is preceded by an odd number of backslashes."
  (save-excursion
    (goto-char pos)
    (= (logand (skip-chars-backward "\\\\") 1) 1)))

(defun hikyaku--syntax-propertize (start end)
  "Mark triple-quoted blocks and regex literals between START and END.
Both become generic strings (string fences), so that `#', `\"' and `/'
inside them are neither comments nor string delimiters."
  (goto-char start)
  (while (re-search-forward "\"\"\"\\|/" end t)
    (let* ((mb (match-beginning 0))
           (me (match-end 0))
           (ppss (save-excursion (save-match-data (syntax-ppss mb)))))
      (cond
       ((nth 4 ppss))                   ; in a comment
       ((eq (char-after mb) ?/)
        (unless (nth 3 ppss)            ; a slash outside strings: regex
          (goto-char me)
          (when (re-search-forward "\\(?:[^\\\\/\n]\\|\\\\.\\)*\\(/\\)"
                                   (line-end-position) t)
            (put-text-property mb me 'syntax-table (string-to-syntax "|"))
            (put-text-property (match-beginning 1) (match-end 1)
                               'syntax-table (string-to-syntax "|"))
            (skip-chars-forward "imsx"))))
       ;; `"""' from here on.
       ((null (nth 3 ppss))             ; opens a block
        (put-text-property mb (1+ mb) 'syntax-table (string-to-syntax "|")))
       ((and (eq (nth 3 ppss) t)        ; in a block: closes it, unless escaped
             (eq (char-after (nth 8 ppss)) ?\"))
        (if (hikyaku--escaped-p mb)
            (goto-char (1+ mb))
          (put-text-property (1- me) me 'syntax-table (string-to-syntax "|"))))
       (t                               ; in a "..." string: only 1st quote counts
        (goto-char (1+ mb)))))))

(defun hikyaku--syntactic-face (state)
  "Face for the string or comment described by the `syntax-ppss' STATE."
  (cond ((nth 4 state) 'font-lock-comment-face)
        ((eq (char-after (nth 8 state)) ?/) 'hikyaku-regexp-face)
        (t 'font-lock-string-face)))

;;;; Font lock

(defun hikyaku--in-text-string-p (pos)
  "Non-nil if POS is inside a \"...\" string or a \"\"\"...\"\"\" block."
  (let ((ppss (save-excursion (syntax-ppss pos))))
    (and (nth 3 ppss)
         (eq (char-after (nth 8 ppss)) ?\"))))

(defun hikyaku--make-string-matcher (regexp)
  "Return a font-lock matcher for REGEXP that only matches inside strings."
  (lambda (limit)
    (let (found)
      (while (and (not found) (re-search-forward regexp limit t))
        (when (save-match-data (hikyaku--in-text-string-p (match-beginning 0)))
          (setq found t)))
      found)))

(defun hikyaku--in-test-block-p (pos)
  "Non-nil if POS is inside the braces of a test \"name\" { ... } block."
  (save-excursion
    (let ((outer (car (nth 9 (syntax-ppss pos)))))
      (when (and outer (eq (char-after outer) ?{))
        (goto-char outer)
        (skip-chars-backward " \t\n")
        (when (and (eq (char-before) ?\")
                   (not (hikyaku--escaped-p (1- (point)))))
          (let ((name-start (nth 8 (syntax-ppss (1- (point))))))
            (when name-start
              (goto-char name-start)
              (skip-chars-backward " \t")
              (looking-back "\\_<test" (line-beginning-position)))))))))

(defun hikyaku--match-test-statement (limit)
  "Font-lock matcher for test statements inside test blocks, up to LIMIT."
  (let ((re (hikyaku--words-re hikyaku--test-statements))
        found)
    (while (and (not found) (re-search-forward re limit t))
      (when (save-match-data
              (let ((ppss (save-excursion (syntax-ppss (match-beginning 0)))))
                (and (not (nth 8 ppss))
                     (hikyaku--in-test-block-p (match-beginning 0)))))
        (setq found t)))
    found))

(defun hikyaku--match-regexp-flags (limit)
  "Font-lock matcher for the flags after a regex literal, up to LIMIT."
  (let (found)
    (while (and (not found) (re-search-forward "/\\([imsx]+\\)" limit t))
      (let ((slash (match-beginning 0)))
        (when (and (equal (get-text-property slash 'syntax-table)
                          (string-to-syntax "|"))
                   (save-match-data
                     (not (nth 3 (save-excursion (syntax-ppss (1+ slash)))))))
          (setq found t))))
    found))

(defvar hikyaku-font-lock-keywords
  `(;; Inside strings (these override the string face).
    (,(hikyaku--make-string-matcher "\\${[^}\"\n]*}")
     0 'font-lock-variable-name-face t)
    (,(hikyaku--make-string-matcher
       "\\\\\\(?:[\"\\\\ntr]\\|u{[[:xdigit:]]\\{1,6\\}}\\)")
     0 'hikyaku-escape-face t)
    (,(hikyaku--make-string-matcher "\\\\.")
     0 'font-lock-warning-face keep)
    (hikyaku--match-regexp-flags 1 'hikyaku-regexp-face)
    ;; Code.
    ("\\_<\\(const\\)\\s-+\\([[:alpha:]_][[:alnum:]_]*\\)"
     (1 'font-lock-keyword-face)
     (2 'font-lock-variable-name-face))
    (hikyaku--match-test-statement . 'font-lock-keyword-face)
    (,(concat "\\.\\(" (regexp-opt hikyaku--properties) "\\)\\_>")
     1 'font-lock-variable-name-face)
    (,(hikyaku--words-re (append hikyaku--keywords hikyaku--operator-words))
     . 'font-lock-keyword-face)
    (,(hikyaku--words-re hikyaku--stages) . 'font-lock-type-face)
    (,(hikyaku--words-re hikyaku--actions) . 'font-lock-function-name-face)
    (,(hikyaku--words-re hikyaku--modifiers) . 'font-lock-keyword-face)
    (,(hikyaku--words-re hikyaku--fields) . 'font-lock-builtin-face)
    (,(hikyaku--words-re hikyaku--constants) . 'font-lock-constant-face)
    ;; 90 days, 1 day, 12 hours; 10, 8M, 20K, 1G, 512KB, 5MB.
    ("\\_<[0-9]+[ \t]+\\(?:second\\|minute\\|hour\\|day\\|week\\)s?\\_>"
     . 'font-lock-constant-face)
    ("\\_<[0-9]+\\(?:[KMG]B?\\)?\\_>" . 'font-lock-constant-face))
  "Font-lock keywords for `hikyaku-mode'.")

;;;; Indentation

(defun hikyaku--calculate-indent ()
  "Column for the current line, or `noindent' inside a multi-line string."
  (save-excursion
    (beginning-of-line)
    (let ((ppss (syntax-ppss)))
      (if (nth 3 ppss)
          'noindent
        (let ((depth (nth 0 ppss)))
          (back-to-indentation)
          (when (looking-at "[]})]")
            (setq depth (1- depth)))
          (* hikyaku-indent-offset (max 0 depth)))))))

(defun hikyaku-indent-line ()
  "Indent the current line by brace depth.
Lines inside a triple-quoted block are left as they are."
  (interactive)
  (let ((indent (hikyaku--calculate-indent)))
    (if (eq indent 'noindent)
        'noindent
      (if (<= (current-column) (current-indentation))
          (indent-line-to indent)
        (save-excursion (indent-line-to indent))))))

;;;; Mode

;;;###autoload
(define-derived-mode hikyaku-mode prog-mode "Hikyaku"
  "Major mode for editing Hikyaku rule files (.hk).

\\{hikyaku-mode-map}"
  :syntax-table hikyaku-mode-syntax-table
  :group 'hikyaku
  (setq-local comment-start "# ")
  (setq-local comment-end "")
  (setq-local comment-start-skip "#+[ \t]*")
  (setq-local syntax-propertize-function #'hikyaku--syntax-propertize)
  (setq-local font-lock-defaults '(hikyaku-font-lock-keywords nil nil))
  (setq-local font-lock-syntactic-face-function #'hikyaku--syntactic-face)
  (setq-local indent-line-function #'hikyaku-indent-line)
  (setq-local indent-tabs-mode nil)
  (setq-local tab-width hikyaku-indent-offset)
  (setq-local electric-indent-chars
              (append "{}[]" electric-indent-chars))
  (setq-local imenu-generic-expression
              '(("Tests" "^\\s-*test\\s-+\"\\([^\"\n]*\\)\"" 1)
                ("Stages" "^\\s-*on\\s-+\\([[:alpha:]]+\\)" 1)
                ("Constants" "^\\s-*const\\s-+\\([[:alpha:]_][[:alnum:]_]*\\)" 1)
                (nil "^\\s-*rule\\s-+\"\\([^\"\n]*\\)\"" 1))))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.hk\\'" . hikyaku-mode))

(provide 'hikyaku-mode)

;;; hikyaku-mode.el ends here
