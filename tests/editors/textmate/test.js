// Checks for editors/vscode: validates the extension manifest and tokenizes
// tests/editors/sample.hk with vscode-textmate + vscode-oniguruma (the engine
// VS Code itself uses), asserting the scopes listed in expectations.txt.
// Prints one "PASS: ..." / "FAIL: ..." line per check; exits 1 on failure.
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const root = path.resolve(__dirname, '..', '..', '..');
const extDir = path.join(root, 'editors', 'vscode');
let failures = 0;

function report(ok, msg) {
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: textmate: ${msg.replace(/\n/g, ' ')}`);
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// ---------------------------------------------------------------- manifest
function checkManifest() {
  let pkg;
  try {
    pkg = readJson(path.join(extDir, 'package.json'));
    report(true, 'editors/vscode/package.json is valid JSON');
  } catch (e) {
    report(false, `editors/vscode/package.json is valid JSON: ${e.message}`);
    return null;
  }
  const contributes = pkg.contributes || {};
  const lang = (contributes.languages || []).find((l) => l.id === 'hikyaku');
  report(Boolean(lang && (lang.extensions || []).includes('.hk')),
    'package.json contributes language "hikyaku" for .hk files');

  let langConf = null;
  try {
    const confPath = path.join(extDir, lang.configuration);
    langConf = readJson(confPath);
    const pairs = (langConf.autoClosingPairs || []).map((p) => (Array.isArray(p) ? p[0] : p.open));
    const brackets = (langConf.brackets || []).map((b) => b.join(''));
    const ok = langConf.comments && langConf.comments.lineComment === '#' &&
      ['{}', '[]', '()'].every((b) => brackets.includes(b)) &&
      ['{', '[', '(', '"'].every((p) => pairs.includes(p));
    report(ok, `language configuration ${lang.configuration}: # comments, brackets, auto-closing pairs`);
  } catch (e) {
    report(false, `language configuration exists and is valid JSON: ${e.message}`);
  }

  const gram = (contributes.grammars || []).find((g) => g.language === 'hikyaku');
  if (!gram) {
    report(false, 'package.json contributes a grammar for "hikyaku"');
    return null;
  }
  const grammarPath = path.join(extDir, gram.path);
  const exists = fs.existsSync(grammarPath);
  report(exists, `grammar path ${gram.path} exists`);
  if (!exists) return null;
  let raw;
  try {
    raw = readJson(grammarPath);
    report(true, 'grammar is valid JSON');
  } catch (e) {
    report(false, `grammar is valid JSON: ${e.message}`);
    return null;
  }
  report(raw.scopeName === 'source.hikyaku' && gram.scopeName === raw.scopeName,
    `scopeName matches: package.json "${gram.scopeName}", grammar "${raw.scopeName}"`);
  return { grammarPath, raw };
}

// Every include '#name' resolves; every regex compiles in Oniguruma.
function checkGrammarStructure(raw) {
  const repo = raw.repository || {};
  const missing = [];
  const bad = [];
  let count = 0;
  (function walk(node) {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'include' && value.startsWith('#') && !(value.slice(1) in repo)) missing.push(value);
      if (['match', 'begin', 'end', 'while'].includes(key) && typeof value === 'string') {
        count++;
        try {
          new oniguruma.OnigScanner([value]).dispose();
        } catch (e) {
          bad.push(`${value}: ${e.message}`);
        }
      }
      walk(value);
    }
  })(raw);
  report(missing.length === 0, `all grammar includes resolve${missing.length ? ': missing ' + missing.join(' ') : ''}`);
  report(bad.length === 0 && count > 0,
    `all ${count} grammar regexes compile in Oniguruma${bad.length ? ': ' + bad.join('; ') : ''}`);
}

// ------------------------------------------------------------------ tokens
function scopeIs(scope, name) {
  return scope === name || scope.startsWith(name + '.');
}

function checkScopes(scopes, spec) {
  const inner = scopes[scopes.length - 1];
  for (const cond of spec.split(/\s+/)) {
    if (cond === '-') {
      if (scopes.length !== 1) return 'expected no scope';
    } else if (cond.startsWith('+')) {
      if (!scopes.some((s) => scopeIs(s, cond.slice(1)))) return `expected ${cond.slice(1)} in the stack`;
    } else if (cond.startsWith('!')) {
      if (scopes.some((s) => scopeIs(s, cond.slice(1)))) return `expected no ${cond.slice(1)}`;
    } else if (!scopeIs(inner, cond)) {
      return `expected innermost ${cond}`;
    }
  }
  return '';
}

async function main() {
  const manifest = checkManifest();
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  if (!manifest) return;
  checkGrammarStructure(manifest.raw);

  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => (scopeName === 'source.hikyaku'
      ? vsctm.parseRawGrammar(fs.readFileSync(manifest.grammarPath, 'utf8'), manifest.grammarPath)
      : null),
  });
  const grammar = await registry.loadGrammar('source.hikyaku');
  report(Boolean(grammar), 'vscode-textmate loads the grammar');
  if (!grammar) return;

  const lines = fs.readFileSync(path.join(root, 'tests', 'editors', 'sample.hk'), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const tokens = [];
  let state = vsctm.INITIAL;
  let stopped = false;
  for (const line of lines) {
    const r = grammar.tokenizeLine(line, state);
    stopped = stopped || r.stoppedEarly;
    tokens.push(r.tokens);
    state = r.ruleStack;
  }
  report(!stopped && state.depth === 1,
    `sample.hk tokenizes completely and ends at top level (stack depth ${state.depth})`);

  const expectations = fs.readFileSync(path.join(root, 'tests', 'editors', 'expectations.txt'), 'utf8');
  for (const rawLine of expectations.split('\n')) {
    if (/^\s*(#|$)/.test(rawLine)) continue;
    const f = rawLine.split('|').map((s) => s.trim());
    if (f.length !== 7) {
      report(false, `malformed expectation line: ${rawLine}`);
      continue;
    }
    const [lnum, needle, offset, spec, desc] = [Number(f[0]), f[1], Number(f[2]), f[5], f[6]];
    const where = `line ${lnum} "${needle}"${offset ? (offset > 0 ? '+' : '') + offset : ''}`;
    const text = lines[lnum - 1] || '';
    const idx = text.indexOf(needle);
    if (idx < 0) {
      report(false, `${desc} (${where}): needle not found on the line`);
      continue;
    }
    // Offsets count characters; the sample keeps astral characters out of
    // the needles, so UTF-16 indices are character indices there.
    const col = idx + offset;
    const tok = tokens[lnum - 1].find((t) => t.startIndex <= col && col < t.endIndex);
    const scopes = tok ? tok.scopes : ['(no token)'];
    const why = checkScopes(scopes, spec);
    report(!why, `${desc} (${where}: ${spec})${why ? `: ${why}, got ${scopes.join(' ')}` : ''}`);
  }
}

main().then(
  () => process.exit(failures ? 1 : 0),
  (e) => {
    report(false, `error: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  },
);
