" Hikyaku rule files
autocmd BufNewFile,BufRead *.hk setfiletype hikyaku
