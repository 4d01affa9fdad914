"""The administration commands (`hikyaku domain|user|alias|plan|accounts`)
run as a program in a temporary state directory: adding, changing, listing
(text and JSON) and deleting domains, users and aliases; password input from
a file and from standard input, never the command line; imported hashes
upgraded at the first login; the key file of legacy secrets created 0600 and
refused when others can read it; errors with their exit codes (1 refused,
2 usage, 3 store trouble); two writers at once; a damaged store reported.

Prints PASS:/FAIL: lines, exits non-zero on any failure. The binary is
$HIKYAKU (default build/hikyaku)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HIKYAKU = os.path.abspath(os.environ.get("HIKYAKU", "build/hikyaku"))
failures = 0


def check(name, ok, detail=""):
    global failures
    if ok:
        print("PASS: " + name)
    else:
        failures += 1
        print("FAIL: %s: %s" % (name, detail))


def run(*args, stdin=None, env=None):
    """Runs hikyaku with --state; returns (exit code, stdout, stderr)."""
    argv = [HIKYAKU] + list(args)
    if env is None:
        argv += ["--state", STATE]
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                       env=env, stdin=None if stdin is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def expect(name, args, code, out_has=None, err_has=None, stdin=None):
    rc, out, err = run(*args, stdin=stdin)
    ok = rc == code
    if out_has is not None:
        ok = ok and out_has in out
    if err_has is not None:
        ok = ok and err_has in err
    check(name, ok, "exit %d (want %d), stdout %r, stderr %r" % (rc, code, out[:300], err[:300]))
    return out


tmp = tempfile.mkdtemp(prefix="hk-admin-e2e-")
STATE = os.path.join(tmp, "var")
try:
    pwfile = os.path.join(tmp, "pw")
    with open(pwfile, "w") as f:
        f.write("first password 1\n")

    # --- domains
    expect("domain add", ["domain", "add", "Example.JP"], 0, out_has="added domain example.jp")
    check("state directory and store created", os.path.isfile(os.path.join(STATE, "accounts.gdbm")))
    mode = stat.S_IMODE(os.stat(os.path.join(STATE, "accounts.gdbm")).st_mode)
    check("accounts.gdbm is not readable by others", mode & 0o077 == 0, oct(mode))
    expect("duplicate domain refused (case-insensitive)", ["domain", "add", "example.jp."], 1, err_has="already hosted")
    expect("IDN domain stored as A-label", ["domain", "add", "例え.jp", "--legacy-auth"], 0, out_has="xn--r8jz45g.jp")
    expect("bad domain refused", ["domain", "add", "bad..domain"], 1, err_has="invalid domain")
    expect("single-label domain refused", ["domain", "add", "localhost"], 1, err_has="invalid domain")
    expect("unknown plan refused", ["domain", "add", "c.example", "--plan", "gold"], 1, err_has="no plan 'gold'")
    expect("domain with options", ["domain", "add", "b.example", "--plan", "light", "--max-size", "5M",
                                   "--catchall", "postmaster@example.jp"], 0)
    expect("--cert without --key is a usage error", ["domain", "set", "b.example", "--cert", "/x.pem"], 2)
    expect("domain set", ["domain", "set", "b.example", "--cert", "/etc/x.pem", "--key", "/etc/x.key"], 0)
    out = expect("domain list (text)", ["domain", "list"], 0, out_has="b.example")
    check("domain list shows the options", "legacy-auth" in out and "catch-all" in out and "cert" in out, out)
    out = expect("domain list --json", ["domain", "list", "--json"], 0)
    try:
        doms = json.loads(out)
        names = [d["name"] for d in doms]
        check("domain list JSON is sorted and complete", names == ["b.example", "example.jp", "xn--r8jz45g.jp"], names)
        idn = [d for d in doms if d["name"] == "xn--r8jz45g.jp"][0]
        check("JSON shows the Unicode form and legacy flag", idn.get("unicode") == "例え.jp" and idn["legacy_auth"], idn)
        b = [d for d in doms if d["name"] == "b.example"][0]
        check("JSON domain options", b["plan"] == "light" and b["max_message_size"] == 5 << 20
              and b["catchall"] == "postmaster@example.jp" and b["cert"] == "/etc/x.pem", b)
    except (ValueError, IndexError, KeyError) as e:
        check("domain list JSON parses", False, "%s: %r" % (e, out))
    expect("domain show", ["domain", "show", "EXAMPLE.jp"], 0, out_has="max size     50M (plan)")
    expect("domain show unknown", ["domain", "show", "nothere.example"], 1, err_has="not hosted")

    # --- users
    expect("user add with --password-file", ["user", "add", "Taro@example.jp", "--password-file", pwfile], 0,
           out_has="added user Taro@example.jp")
    expect("duplicate user refused (case-insensitive)", ["user", "add", "TARO@EXAMPLE.JP", "--no-password"], 1,
           err_has="already exists")
    expect("user in unknown domain refused", ["user", "add", "x@nothere.example", "--no-password"], 1,
           err_has="not hosted")
    for bad in ["no-at-sign", "a b@example.jp", "\"q\"@example.jp", "a..b@example.jp", "ユーザ@example.jp"]:
        expect("bad address refused: " + bad, ["user", "add", bad, "--no-password"], 1, err_has="invalid address")
    expect("no password source without a terminal", ["user", "add", "jiro@example.jp"], 1, err_has="no password given")
    expect("password on the command line is not an option",
           ["user", "add", "jiro@example.jp", "--password", "secret123"], 2, err_has="unknown option")
    expect("short password refused", ["user", "add", "jiro@example.jp", "--stdin"], 1, err_has="too short",
           stdin="short\n")
    expect("two password sources refused", ["user", "add", "jiro@example.jp", "--stdin", "--no-password"], 2)
    expect("user add --stdin", ["user", "add", "jiro@example.jp", "--stdin", "--plan", "entry", "--quota", "2G"], 0,
           stdin="jiro's password\n")
    expect("the refused attempts left nothing behind, --stdin created the user", ["user", "show", "jiro@example.jp"], 0,
           out_has="entry (user override)")
    expect("user in an IDN domain (legacy secrets on)", ["user", "add", "hanako@例え.jp", "--stdin"], 0,
           stdin="hanako password\n")
    key = os.path.join(STATE, "keys", "secret.key")
    check("key file created 0600", os.path.isfile(key) and stat.S_IMODE(os.stat(key).st_mode) == 0o600,
          oct(stat.S_IMODE(os.stat(key).st_mode)) if os.path.exists(key) else "missing")
    check("key directory 0700", stat.S_IMODE(os.stat(os.path.dirname(key)).st_mode) == 0o700)
    expect("user show: legacy secret stored", ["user", "show", "hanako@xn--r8jz45g.jp"], 0,
           out_has="yescrypt+scram+legacy")
    expect("user show: no legacy secret where the domain does not allow it", ["user", "show", "taro@example.jp"], 0,
           out_has="credentials  yescrypt+scram\n")
    expect("user check: right password", ["user", "check", "taro@example.jp", "--password-file", pwfile], 0,
           out_has="password accepted")
    expect("user check: wrong password", ["user", "check", "taro@example.jp", "--stdin"], 1, err_has="wrong password",
           stdin="not the password\n")
    expect("user check: unknown user", ["user", "check", "ghost@example.jp", "--stdin"], 1, stdin="whatever pw\n")

    # --- passwords change; imported hashes are upgraded at the first login
    expect("user passwd --stdin", ["user", "passwd", "taro@EXAMPLE.jp", "--stdin"], 0, out_has="changed the password",
           stdin="second password 2\n")
    expect("old password no longer works", ["user", "check", "taro@example.jp", "--password-file", pwfile], 1)
    expect("new password works", ["user", "check", "taro@example.jp", "--stdin"], 0, stdin="second password 2\n")
    expect("passwd of an unknown user", ["user", "passwd", "ghost@example.jp", "--stdin"], 1, stdin="long enough pw\n")
    hashfile = os.path.join(tmp, "hash")
    with open(hashfile, "w") as f:
        f.write("$6$saltsalt$VYcYnQQhjjyuR8fzll9KDk64MBjP/Id/TpCzliJdlYeqH8XF2m1KP7Bq7DO/F3RxtT0qvX9jWQi62c7oMuxmO/\n")
    expect("user add with an imported sha512crypt hash", ["user", "add", "old@example.jp", "--hash-file", hashfile], 0)
    expect("imported hash shown as such", ["user", "show", "old@example.jp"], 0, out_has="sha512crypt")
    expect("imported hash verifies", ["user", "check", "old@example.jp", "--stdin"], 0, stdin="hikyaku-import-6\n")
    expect("... and is yescrypt with SCRAM keys afterwards", ["user", "show", "old@example.jp"], 0,
           out_has="yescrypt+scram")
    with open(hashfile, "w") as f:
        f.write("plaintext-is-not-a-hash\n")
    expect("unusable hash refused", ["user", "passwd", "old@example.jp", "--hash-file", hashfile], 1,
           err_has="crypt(3)")

    # --- set, disable
    expect("user set --disable", ["user", "set", "jiro@example.jp", "--disable", "--quota", "1G"], 0)
    expect("disabled user cannot log in", ["user", "check", "jiro@example.jp", "--stdin"], 1, err_has="disabled",
           stdin="jiro's password\n")
    expect("user set --enable", ["user", "set", "jiro@example.jp", "--enable"], 0)
    expect("enabled again", ["user", "check", "jiro@example.jp", "--stdin"], 0, stdin="jiro's password\n")
    expect("bad size is a usage error", ["user", "set", "jiro@example.jp", "--quota", "lots"], 2)

    out = expect("user list (text)", ["user", "list"], 0)
    check("user list shows every user", all(a in out for a in ["Taro@example.jp", "jiro@example.jp",
                                                               "hanako@xn--r8jz45g.jp", "old@example.jp"]), out)
    out = expect("user list DOMAIN --json", ["user", "list", "example.jp", "--json"], 0)
    try:
        users = json.loads(out)
        check("user list JSON", [u["address"] for u in users] == ["jiro@example.jp", "old@example.jp",
                                                                   "Taro@example.jp"], users)
        j = [u for u in users if u["address"] == "jiro@example.jp"][0]
        check("JSON user limits", j["plan"] == "entry" and j["quota"] == 1 << 30 and j["limits"]["plan"] == "entry"
              and j["limits"]["retention_seconds"] == 90 * 86400 and j["limits"]["strict_retention"], j)
        check("JSON holds no secrets", "$y$" not in out and "$6$" not in out)
    except (ValueError, IndexError, KeyError) as e:
        check("user list JSON parses", False, "%s: %r" % (e, out))
    expect("user list of an unknown domain", ["user", "list", "nothere.example"], 1)

    # --- aliases
    expect("alias add", ["alias", "add", "info@example.jp", "taro@example.jp", "Someone@Gmail.com"], 0,
           out_has="info@example.jp")
    expect("alias add more targets", ["alias", "add", "info@example.jp", "jiro@example.jp"], 0,
           out_has="jiro@example.jp")
    expect("alias on a user refused", ["alias", "add", "taro@example.jp", "x@remote.example"], 1, err_has="is a user")
    expect("alias in unknown domain refused", ["alias", "add", "info@nothere.example", "taro@example.jp"], 1,
           err_has="not hosted")
    expect("alias with a bad target refused", ["alias", "add", "sales@example.jp", "not an address"], 1,
           err_has="target")
    many = ["t%d@remote.example" % i for i in range(11)]
    expect("alias over the plan's 10 targets refused", ["alias", "add", "many@example.jp"] + many, 1,
           err_has="allows 10")
    expect("user named like an alias refused", ["user", "add", "info@example.jp", "--no-password"], 1,
           err_has="is an alias")
    expect("alias del one target", ["alias", "del", "info@example.jp", "someone@gmail.com"], 0)
    out = expect("alias list --json", ["alias", "list", "--json"], 0)
    try:
        al = json.loads(out)
        check("alias JSON", al == [{"address": "info@example.jp", "targets": ["taro@example.jp", "jiro@example.jp"]}],
              al)
    except ValueError as e:
        check("alias list JSON parses", False, "%s: %r" % (e, out))
    expect("alias list (text)", ["alias", "list", "example.jp"], 0, out_has="info@example.jp")
    expect("alias del unknown target", ["alias", "del", "info@example.jp", "nobody@x.example"], 1)

    # --- plans
    out = expect("plan list --json", ["plan", "list", "--json"], 0)
    try:
        plans = {p["name"]: p for p in json.loads(out)}
        check("built-in plans", sorted(plans) == ["business", "entry", "light", "standard"], sorted(plans))
        check("plan values (10 forwards, 5 lists x 50 up to 250, 8 MB)",
              all(p["max_forward"] == 10 and p["max_lists"] == 5 and p["list_members"] == 50
                  and p["list_members_max"] == 250 and p["list_max_message_size"] == 8 << 20 for p in plans.values()),
              plans)
    except ValueError as e:
        check("plan list JSON parses", False, e)
    expect("plan set (new plan)", ["plan", "set", "gold", "--quota", "200G", "--forward", "20"], 0)
    expect("plan set refuses more than 50 forwards", ["plan", "set", "gold", "--forward", "51"], 2)
    expect("domain on the new plan", ["domain", "set", "b.example", "--plan", "gold"], 0)
    expect("plan in use cannot go", ["plan", "reset", "gold"], 1, err_has="used by")
    expect("plan show", ["plan", "show", "gold"], 0, out_has="200G")

    # --- the key file of legacy secrets must stay private
    os.chmod(key, 0o644)
    expect("world-readable key file refused", ["user", "passwd", "hanako@例え.jp", "--stdin"], 3,
           err_has="chmod 600", stdin="hanako password 2\n")
    os.chmod(key, 0o600)
    expect("private key file accepted again", ["user", "passwd", "hanako@例え.jp", "--stdin"], 0,
           stdin="hanako password 2\n")
    expect("legacy auth off wipes the secrets", ["domain", "set", "例え.jp", "--no-legacy-auth"], 0)
    expect("... and the user shows none", ["user", "show", "hanako@例え.jp"], 0, out_has="credentials  yescrypt+scram\n")

    # --- two writers at once: the lock serialises them
    procs = []
    for w in range(2):
        script = "; ".join("%s user add w%d-%d@example.jp --no-password --state %s >/dev/null" % (HIKYAKU, w, i, STATE)
                           for i in range(8))
        procs.append(subprocess.Popen(["sh", "-c", script]))
    codes = [p.wait(timeout=120) for p in procs]
    out = expect("users of concurrent writers all present", ["user", "list", "example.jp", "--json"], 0)
    try:
        got = [u["address"] for u in json.loads(out) if u["address"].startswith("w")]
        check("16 users from 2 writers", codes == [0, 0] and len(got) == 16, (codes, got))
    except ValueError as e:
        check("user list JSON parses", False, e)

    # --- deleting
    expect("domain with users cannot go", ["domain", "del", "example.jp"], 1, err_has="delete them first")
    expect("user del", ["user", "del", "old@example.jp"], 0)
    expect("user gone", ["user", "show", "old@example.jp"], 1, err_has="no user")
    expect("user del again", ["user", "del", "old@example.jp"], 1)
    expect("alias del", ["alias", "del", "info@example.jp"], 0)
    expect("domain del --force", ["domain", "del", "example.jp", "--force"], 0)
    expect("its users went with it", ["user", "show", "taro@example.jp"], 1)

    # --- usage errors and the environment
    expect("no subcommand", ["user"], 2)
    expect("unknown subcommand", ["domain", "frob"], 2)
    expect("missing argument", ["alias", "add", "x@example.jp"], 2)
    env = dict(os.environ, HIKYAKU_STATE=STATE)
    rc, out, err = run("domain", "list", env=env)
    check("HIKYAKU_STATE finds the store", rc == 0 and "b.example" in out, (rc, out, err))

    # --- damage is reported, not crashed on
    expect("accounts check on a good store", ["accounts", "check"], 0, out_has=" 0 damaged")
    path = os.path.join(STATE, "accounts.gdbm")
    size = os.path.getsize(path)
    shutil.copy(path, path + ".good")
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    rc, out, err = run("user", "list")
    check("damaged store: list says so with exit 3", rc == 3 and "damaged" in err, (rc, out, err))
    expect("damaged store: accounts check exit 3", ["accounts", "check"], 3)
    shutil.copy(path + ".good", path)
    expect("restored store reads again", ["accounts", "check"], 0)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(1 if failures else 0)
