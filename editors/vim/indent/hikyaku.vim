" Vim indent file
" Language:     Hikyaku rule language (*.hk)
" Indents by brace/bracket depth (shiftwidth per level, 4 in the ftplugin).
" Lines inside a """...""" block are left alone.

if exists("b:did_indent")
  finish
endif
let b:did_indent = 1

setlocal indentexpr=GetHikyakuIndent()
setlocal indentkeys=0{,0},0],0),!^F,o,O,e
setlocal autoindent nosmartindent nocindent

let b:undo_indent = "setlocal indentexpr< indentkeys< autoindent< smartindent< cindent<"

if exists("*GetHikyakuIndent")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

" Syntax groups in which brackets do not count.
let s:skip_groups = 'hikyaku\%(String\|TripleString\|TripleQuote\|TestName\|'
      \ . 'Escape\|EscapeError\|Interp\|InterpDelim\|InterpProp\|'
      \ . 'Comment\|Todo\|Regex\|RegexDelim\|RegexEscape\)$'
let s:skip_expr = 'synIDattr(synID(line("."), col("."), 0), "name") =~# s:skip_groups'

function! s:InTripleAt(lnum, col) abort
  for id in synstack(a:lnum, a:col)
    if synIDattr(id, 'name') ==# 'hikyakuTripleString'
      return 1
    endif
  endfor
  return 0
endfunction

" Does line lnum start inside a """...""" block (its opening quotes being on
" an earlier line)?
function! s:StartsInTriple(lnum) abort
  if getline(a:lnum) !~ '^\s*$'
    " Column 1 of a block line (leading blanks included) belongs to the
    " block; the closing """ is the block's delimiter, also in the block.
    return s:InTripleAt(a:lnum, 1)
  endif
  " Blank line: look at the end of the previous non-blank line.
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let line = getline(prev)
  if line =~ '"""\s*$'
    " Opening quotes end the line unless that line itself closes a block.
    let before = substitute(line, '"""\s*$', '', '')
    let inside_before = s:StartsInTriple(prev)
    let n = len(split(before, '"""', 1)) - 1
    return (inside_before + n) % 2 == 0
  endif
  return s:InTripleAt(prev, col([prev, '$']) - 1)
endfunction

function! GetHikyakuIndent() abort
  if exists('b:current_syntax') && s:StartsInTriple(v:lnum)
    return -1
  endif
  let save_cursor = getcurpos()
  call cursor(v:lnum, 1)
  let [olnum, ocol] = searchpairpos('[{[(]', '', '[}\])]', 'bW', s:skip_expr)
  call setpos('.', save_cursor)
  if olnum <= 0
    return 0
  endif
  let base = indent(olnum)
  if getline(v:lnum) =~ '^\s*[}\])]'
    return base
  endif
  return base + shiftwidth()
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
