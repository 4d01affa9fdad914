" Vim syntax file
" Language:     Hikyaku rule language (*.hk)
" Maintainer:   the Hikyaku project
" Notes:        `/` never means division in Hikyaku: outside strings and
"               comments it always opens a regex literal /.../imsx.

if exists("b:current_syntax")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
" Files are small; always parse from the start so multi-line """ blocks and
" test blocks are never mis-detected after a jump.
syn sync fromstart

" ---------------------------------------------------------------- comments
syn keyword hikyakuTodo       contained TODO FIXME XXX NOTE
syn match   hikyakuComment    "#.*$" contains=hikyakuTodo,@Spell

" ----------------------------------------------------------------- strings
" Escapes: \" \\ \n \t \r \u{1F600}; anything else after a backslash is an
" error.  The valid pattern is defined last so it wins at the same column.
syn match   hikyakuEscapeError contained +\\.+
syn match   hikyakuEscape      contained +\\\%(["\\ntr]\|u{\x\{1,6}}\)+
" ${name} interpolation (also ${from.domain}).
syn region  hikyakuInterp      contained oneline matchgroup=hikyakuInterpDelim
      \ start=+\${+ end=+}+ contains=hikyakuInterpProp
syn match   hikyakuInterpProp  contained "\.\h\w*"

syn cluster hikyakuStringItems contains=hikyakuEscape,hikyakuEscapeError,hikyakuInterp,@Spell

" "..." strings do not span lines; """...""" blocks do.  The triple form is
" defined after the plain one so it takes priority where both could start.
syn region  hikyakuString       oneline start=+"+ skip=+\\\\\|\\"+ end=+"+
      \ contains=@hikyakuStringItems
syn region  hikyakuTripleString matchgroup=hikyakuTripleQuote
      \ start=+"""+ skip=+\\\\\|\\"+ end=+"""+
      \ contains=@hikyakuStringItems fold

" ------------------------------------------------------------------- regex
syn match   hikyakuRegexEscape  contained +\\.+
syn region  hikyakuRegex        oneline matchgroup=hikyakuRegexDelim
      \ start=+/+ skip=+\\\\\|\\/+ end=+/[imsx]*+
      \ contains=hikyakuRegexEscape

" ----------------------------------------------------------------- numbers
" 10   8M 20K 1G 512KB 5MB   90 days, 1 day, 12 hours
syn match   hikyakuNumber   "\<\d\+\>"
syn match   hikyakuSize     "\<\d\+[KMG]B\=\>"
syn match   hikyakuDuration "\<\d\+\s\+\%(second\|minute\|hour\|day\|week\)s\=\>"

" ---------------------------------------------------------------- keywords
syn keyword hikyakuKeyword     import on rule when
syn keyword hikyakuKeyword     const nextgroup=hikyakuConstName skipwhite
syn match   hikyakuConstName   contained "\h\w*"
syn keyword hikyakuConditional if else
syn keyword hikyakuBoolean     true false
syn keyword hikyakuLogic       and or not
syn keyword hikyakuOperator    is starts ends with matches in
" "contains" is a :syntax argument name, so it cannot be a :syn keyword.
syn match   hikyakuOperator    "\<contains\>"
syn match   hikyakuSymbolOp    "!\~\|\~\|<=\|>=\|<\|>\|="

syn keyword hikyakuStage       connect helo mail rcpt data deliver retention

syn keyword hikyakuAction      keep fileinto forward notify reply reject discard
      \ skip stop expand strip add remove flag refuse tempfail expunge log
" Modifiers that are also fields (subject from to body header attachments)
" are highlighted as fields; only the unambiguous ones are listed here.
syn keyword hikyakuModifier    every list

syn keyword hikyakuField       subject from to cc bcc reply_to sender header
      \ headers body size attachment attachments has priority envelope
      \ recipient client auth tls spf age seen flagged folder plan hops
" .property: the match starts at the dot, so it wins over the field keyword
" (`envelope.from` highlights `.from` as a property, not as a field).
syn match   hikyakuProperty    "\.\%(local\|domain\|name\|addr\|ip\|helo\|user\|from\|to\|count\|type\|raw\|retention\|max_size\|quota\)\>"

syn keyword hikyakuEnum        pass fail softfail neutral none temperror
      \ permerror high normal low

" ------------------------------------------------------------------ blocks
syn cluster hikyakuTop contains=hikyakuComment,hikyakuString,hikyakuTripleString,
      \hikyakuRegex,hikyakuNumber,hikyakuSize,hikyakuDuration,hikyakuKeyword,
      \hikyakuConditional,hikyakuBoolean,hikyakuLogic,hikyakuOperator,
      \hikyakuSymbolOp,hikyakuStage,hikyakuAction,hikyakuModifier,hikyakuField,
      \hikyakuProperty,hikyakuEnum,hikyakuTestKeyword

syn region  hikyakuBlock transparent fold start="{" end="}"
      \ contains=@hikyakuTop,hikyakuBlock

" test "name" { message file ... expect ... }: the test statements are only
" keywords inside the braces of a test block.
syn keyword hikyakuTestKeyword test nextgroup=hikyakuTestName skipwhite
syn region  hikyakuTestName    contained oneline start=+"+ skip=+\\\\\|\\"+ end=+"+
      \ contains=@hikyakuStringItems
      \ nextgroup=hikyakuTestBody skipwhite skipempty skipnl
syn region  hikyakuTestBody    contained fold matchgroup=hikyakuTestBrace
      \ start="{" end="}"
      \ contains=@hikyakuTop,hikyakuTestStmt,hikyakuTestInner
syn region  hikyakuTestInner   contained transparent start="{" end="}"
      \ contains=@hikyakuTop,hikyakuTestStmt,hikyakuTestInner
" Defined after hikyakuField, so `envelope` in a test block is a statement.
syn keyword hikyakuTestStmt    contained message file envelope expect
      \ suppressed stage

" --------------------------------------------------------------- highlight
hi def link hikyakuTodo         Todo
hi def link hikyakuComment      Comment
hi def link hikyakuString       String
hi def link hikyakuTripleString String
hi def link hikyakuTripleQuote  String
hi def link hikyakuTestName     String
hi def link hikyakuEscape       SpecialChar
hi def link hikyakuEscapeError  Error
hi def link hikyakuInterpDelim  Delimiter
hi def link hikyakuInterp       Identifier
hi def link hikyakuInterpProp   Identifier
hi def link hikyakuRegex        String
hi def link hikyakuRegexDelim   Special
hi def link hikyakuRegexEscape  SpecialChar
hi def link hikyakuNumber       Number
hi def link hikyakuSize         Number
hi def link hikyakuDuration     Number
hi def link hikyakuKeyword      Keyword
hi def link hikyakuTestKeyword  Keyword
hi def link hikyakuConstName    Function
hi def link hikyakuConditional  Conditional
hi def link hikyakuBoolean      Boolean
hi def link hikyakuLogic        Operator
hi def link hikyakuOperator     Operator
hi def link hikyakuSymbolOp     Operator
hi def link hikyakuStage        Type
hi def link hikyakuAction       Statement
hi def link hikyakuModifier     StorageClass
hi def link hikyakuField        Identifier
hi def link hikyakuProperty     Identifier
hi def link hikyakuEnum         Constant
hi def link hikyakuTestStmt     Statement

let b:current_syntax = "hikyaku"

let &cpo = s:cpo_save
unlet s:cpo_save
