" Headless vim checks for editors/vim; run by tests/editors/run.sh as
"   HK_ROOT=... HK_OUT=... vim -N -u NONE -i NONE -n -es -S tests/editors/vim-test.vim
" Writes one "PASS: ..." / "FAIL: ..." line per check to $HK_OUT.

set nocompatible
let s:root = $HK_ROOT
let s:out = []

function! s:Report(ok, msg) abort
  call add(s:out, (a:ok ? 'PASS: ' : 'FAIL: ') . 'vim: ' . a:msg)
endfunction

" Check one expectation column; returns '' when it holds, else the reason.
function! s:Check(lnum, col, spec) abort
  let inner = synIDattr(synID(a:lnum, a:col, 1), 'name')
  let stack = map(synstack(a:lnum, a:col), 'synIDattr(v:val, "name")')
  let shown = 'got ' . (inner ==# '' ? '(none)' : inner) . ' in [' . join(stack, ' ') . ']'
  for cond in split(a:spec)
    if cond ==# '-'
      if inner !=# ''
        return 'expected no group, ' . shown
      endif
    elseif cond[0] ==# '+'
      if index(stack, cond[1:]) < 0
        return 'expected ' . cond[1:] . ' in the stack, ' . shown
      endif
    elseif cond[0] ==# '!'
      if index(stack, cond[1:]) >= 0 || inner ==# cond[1:]
        return 'expected no ' . cond[1:] . ', ' . shown
      endif
    elseif inner !=# cond
      return 'expected ' . cond . ', ' . shown
    endif
  endfor
  return ''
endfunction

execute 'set runtimepath^=' . fnameescape(s:root . '/editors/vim')
filetype plugin indent on
syntax on

try
  execute 'edit ' . fnameescape(s:root . '/tests/editors/sample.hk')
  call s:Report(&filetype ==# 'hikyaku',
        \ 'ftdetect: *.hk gets filetype hikyaku (got "' . &filetype . '")')
  call s:Report(get(b:, 'current_syntax', '') ==# 'hikyaku',
        \ 'syntax/hikyaku.vim loaded (b:current_syntax = "' . get(b:, 'current_syntax', '') . '")')
  call s:Report(&commentstring ==# '# %s',
        \ 'ftplugin: commentstring is "# %s" (got "' . &commentstring . '")')
  call s:Report(&shiftwidth == 4 && &softtabstop == 4 && &expandtab,
        \ printf('ftplugin: indent 4 spaces (sw=%d sts=%d et=%d)', &shiftwidth, &softtabstop, &expandtab))

  let groups = {}
  for raw in readfile(s:root . '/tests/editors/expectations.txt')
    if raw =~ '^\s*\%(#\|$\)'
      continue
    endif
    let f = map(split(raw, '|', 1), 'trim(v:val)')
    if len(f) != 7
      call s:Report(0, 'malformed expectation line: ' . raw)
      continue
    endif
    let [lnum, needle, offset, spec, desc] = [str2nr(f[0]), f[1], str2nr(f[2]), f[3], f[6]]
    let where = printf('line %d "%s"%s', lnum, needle, offset ? printf('%+d', offset) : '')
    let text = getline(lnum)
    let idx = stridx(text, needle)
    if idx < 0
      call s:Report(0, desc . ' (' . where . '): needle not found on the line')
      continue
    endif
    " Byte column of the character OFFSET characters after the needle start.
    let nchars = strchars(strpart(text, 0, idx)) + offset
    let col = byteidx(text, nchars) + 1
    let why = s:Check(lnum, col, spec)
    call s:Report(why ==# '', desc . ' (' . where . ': ' . spec . ')' . (why ==# '' ? '' : ': ' . why))
    for cond in split(spec)
      let name = substitute(cond, '^[+!]', '', '')
      if name =~# '^hikyaku'
        let groups[name] = 1
      endif
    endfor
  endfor

  " Every group the checks rely on must be linked to a standard group.
  let unlinked = filter(sort(keys(groups)), 'synIDattr(synIDtrans(hlID(v:val)), "name") ==# v:val')
  call s:Report(empty(unlinked), printf('%d syntax groups linked to highlight groups', len(groups))
        \ . (empty(unlinked) ? '' : ': unlinked ' . join(unlinked)))

  " Indentation: re-indent a mis-indented file and compare.
  execute 'edit ' . fnameescape(s:root . '/tests/editors/indent-input.hk')
  call s:Report(&indentexpr ==# 'GetHikyakuIndent()',
        \ 'indent/hikyaku.vim sets indentexpr (got "' . &indentexpr . '")')
  silent normal! gg=G
  let want = readfile(s:root . '/tests/editors/indent-expected.hk')
  let got = getline(1, '$')
  let bad = []
  for i in range(max([len(want), len(got)]))
    if get(want, i, '<EOF>') !=# get(got, i, '<EOF>')
      call add(bad, printf('line %d: got "%s" want "%s"', i + 1, get(got, i, '<EOF>'), get(want, i, '<EOF>')))
    endif
  endfor
  call s:Report(empty(bad), 'gg=G re-indents indent-input.hk to indent-expected.hk'
        \ . (empty(bad) ? '' : ' (' . len(bad) . ' lines differ; ' . bad[0] . ')'))
  bwipeout!
catch
  call s:Report(0, 'error: ' . v:exception . ' at ' . v:throwpoint)
endtry

call writefile(s:out, $HK_OUT)
qall!
