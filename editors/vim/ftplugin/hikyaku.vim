" Vim filetype plugin
" Language:     Hikyaku rule language (*.hk)

if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

let s:cpo_save = &cpo
set cpo&vim

setlocal commentstring=#\ %s
setlocal comments=:#
setlocal formatoptions-=t formatoptions+=croql
setlocal expandtab shiftwidth=4 softtabstop=4
setlocal suffixesadd=.hk

let b:undo_ftplugin = "setlocal commentstring< comments< formatoptions<"
      \ . " expandtab< shiftwidth< softtabstop< suffixesadd<"

let &cpo = s:cpo_save
unlet s:cpo_save
