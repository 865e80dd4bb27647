"""Deterministic generator of labelled C functions for vulnerability prediction (public API).

A deliberate part of the package, not test support: the quickstart, the CI example
(``examples/make_dataset.py``), the tests and the benchmarks need labelled code without depending
on an external data set, and so does a team that wants to check its audit pipeline end to end
(train, audit, harden, plant and find a canary backdoor) before pointing it at real models. The
functions are synthetic weakness patterns, not real vulnerabilities: never judge a real model's
quality on them. :func:`generate` builds complete C function definitions from a fixed set
of weakness patterns (:data:`CWE_TEMPLATES`). Each pattern has a vulnerable rendering
(``target`` 1) and a safe rendering (``target`` 0) of the same skeleton; the two differ only in
the code that makes the weakness real (a missing bounds check, a ``<=`` that should be ``<``, a
``free`` before the last use, ...). Everything around it -- names, types, buffer sizes, logging,
unrelated loops, comments, brace and indentation style -- is drawn at random from realistic
vocabularies, so a model has to learn the structure of each weakness rather than a keyword.

No identifier or comment contains a word that names the label ("bad", "good", "safe", "vuln",
"fix", "flaw"), and every function parses with tree-sitter-c without error nodes.

Randomness comes only from :class:`random.Random` instances seeded from the caller's ``seed``;
the global random state is never touched, so the same arguments always give the same records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["CWE_TEMPLATES", "generate"]

#: Names of the weakness patterns the generator knows, one per CWE.
CWE_TEMPLATES: tuple[str, ...] = (
    "CWE-120",  # unbounded string copy into a fixed-size buffer
    "CWE-121",  # memcpy / byte loop with a caller-controlled length into a stack buffer
    "CWE-129",  # array index from the caller used without a range check
    "CWE-134",  # user-controlled format string
    "CWE-190",  # multiplication that can wrap before an allocation
    "CWE-193",  # off-by-one: <= in a loop bound, terminator written one past the end
    "CWE-195",  # signed length that passes an upper-bound check while negative
    "CWE-415",  # the same pointer freed twice
    "CWE-416",  # memory used after it was freed
    "CWE-457",  # local variable read before it is assigned on every path
    "CWE-476",  # result of malloc / lookup / strchr / getenv / fopen used without a NULL check
)

# A line of C inside the function body: (nesting level, text). Level -1 is column zero (labels).
_Line = tuple[int, str]
_Body = list[_Line]

# --------------------------------------------------------------------------------------------
# Vocabularies. Everything is snake_case here; _Fn.style() turns it into camelCase when the
# function is drawn in that style. Words that name the label are never used (see module doc).
# --------------------------------------------------------------------------------------------

# fmt: off
_VERBS = (
    "parse", "read", "load", "copy", "handle", "process", "decode", "build", "init", "update",
    "store", "fetch", "format", "append", "set", "get", "write", "send", "recv", "apply",
    "register", "lookup", "emit", "dump", "fill", "pack", "unpack", "convert", "extract", "scan",
    "save", "open", "reset", "merge", "split", "queue", "resolve", "render", "prepare", "attach",
)
_NOUNS = (
    "header", "packet", "user_name", "record", "entry", "config", "token", "path", "message",
    "frame", "field", "request", "response", "session", "key", "value", "label", "chunk", "block",
    "node", "item", "table", "option", "attr", "name", "line", "cookie", "host", "url", "payload",
    "section", "segment", "slot", "event", "reply", "command", "descriptor", "sample", "row",
    "tag", "blob", "params", "device", "channel", "port", "client", "peer", "property", "region",
)
_SCOPES = (
    "net", "http", "xml", "json", "img", "cfg", "usb", "tcp", "dns", "tls", "fs", "db", "ui",
    "audio", "mqtt", "pcap", "tiff", "png", "zip", "smb", "ftp", "ldap", "snmp", "sip", "rtp",
    "bt", "vfs", "ipc", "gfx", "midi",
)
_ROLES: dict[str, tuple[str, ...]] = {
    "src": (
        "src", "input", "str", "user", "arg", "raw", "text", "name", "value", "user_name",
        "host_name", "req_path", "label", "field_value", "username", "hostname", "query",
        "key_str", "title", "token", "in_str", "origin",
    ),
    "buf": (
        "buf", "tmp", "local", "scratch", "line", "dest", "dst", "hdr", "field", "work",
        "tmp_buf", "name_buf", "path_buf", "linebuf", "storage", "out_buf", "copy_buf", "tmpbuf",
        "str_buf", "frame", "stage", "cell",
    ),
    "len": (
        "len", "n", "size", "count", "pkt_len", "buf_size", "nbytes", "total", "length",
        "data_len", "msg_len", "payload_len", "sz", "num_bytes", "nread", "want", "chunk_len",
        "rec_len", "body_len", "field_len",
    ),
    "data": (
        "data", "payload", "bytes", "pkt", "raw", "in", "input", "src", "frame_data", "body",
        "blob", "chunk", "packet", "octets", "stream_data",
    ),
    "idx": (
        "idx", "index", "slot", "pos", "offset", "id", "which", "entry_idx", "chan", "port_num",
        "key_id", "n", "sel", "unit",
    ),
    "ptr": (
        "p", "ctx", "obj", "node", "ent", "item", "rec", "state", "info", "handle", "conn",
        "sess", "req", "elem", "desc", "cfg", "priv", "entry", "hdl",
    ),
    "obj": (
        "ctx", "conn", "sess", "req", "dev", "client", "state", "self", "parser", "tbl", "table",
        "cache", "server", "peer", "stream", "owner", "mgr", "reg",
    ),
    "count": (
        "count", "n", "nitems", "num_entries", "nmemb", "num", "cnt", "n_elems", "item_count",
        "num_records", "entries", "rows", "nslots", "n_frames",
    ),
    "esz": ("size", "elem_size", "item_size", "esize", "width", "stride", "rec_size", "unit_len"),
    "loop": ("i", "j", "k", "ix", "pos", "n", "idx"),
    "msg": (
        "msg", "text", "reason", "user_msg", "err_text", "comment", "title", "banner",
        "status_line", "input", "reply_text", "name", "line", "description", "note", "str",
        "remote_msg", "detail",
    ),
    "rc": ("rc", "ret", "err", "status", "res", "result", "error", "r"),
    "val": ("val", "value", "v", "arg", "x", "level", "code", "weight", "mask", "amount"),
    "fd": ("fd", "sock", "sockfd", "conn_fd", "s", "infd", "peer_fd"),
    "key": ("key", "name", "id", "tag", "ident", "lookup_key", "needle", "wanted"),
    "next": ("next", "tmp", "nxt", "following", "after", "succ", "rest"),
    "flag": ("flags", "opts", "options", "mode_flags", "fl", "how"),
    "acc": ("acc", "sum", "total_sum", "checksum", "hash", "crc", "h", "accum", "digest"),
    "label": ("out", "done", "cleanup", "fail", "err_out", "exit_path", "error_out", "bail"),
    "mode": ("mode", "kind", "type", "op", "cmd", "opcode", "variant", "level", "which"),
    "fp": ("fp", "f", "file", "stream", "out", "log_fp", "in_file"),
    "tag": ("tag", "ident", "short_name", "desc_buf", "id_str", "marker"),
    "copy": ("copy", "dup", "name_copy", "cloned", "dup_str", "owned"),
    "now": ("now", "ts", "stamp", "t0", "start_time", "when"),
}
_STRUCTS = (
    "conn", "session", "request", "packet_hdr", "entry", "node", "item", "record", "context",
    "state", "client", "buf_desc", "msg", "frame", "option", "attr", "device", "table",
    "cache_entry", "list_node", "user", "peer", "sample", "rule", "job", "chunk", "region", "tlv",
    "cell", "widget",
)
_INT_FIELDS = (
    "id", "len", "size", "flags", "refcount", "count", "type", "state", "mode", "port", "timeout",
    "used", "capacity", "seq", "owner_id", "weight",
)
_PTR_FIELDS = ("name", "path", "data", "buf", "payload", "label", "value", "host", "extra")
_ARRAY_FIELDS = ("slots", "entries", "counters", "weights", "ports", "handlers", "table", "bins")
_SIZE_MACROS = (
    "MAX_NAME_LEN", "NAME_LEN", "BUF_SIZE", "MAX_PATH_LEN", "LINE_LEN", "HDR_LEN", "MAX_LABEL",
    "TOKEN_LEN", "MAX_FIELD", "KEY_SIZE", "MSG_MAX", "MAX_LINE", "HOST_LEN", "TAG_SIZE",
)
_COUNT_MACROS = (
    "MAX_SLOTS", "MAX_ENTRIES", "NUM_PORTS", "TABLE_SIZE", "MAX_CHANNELS", "NR_BINS", "MAX_ITEMS",
    "RING_SIZE", "MAX_USERS", "N_HANDLERS",
)
_SIZES = (8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 100, 128, 200, 256, 512, 1024)
_LOGGERS = (
    "log_debug", "pr_debug", "LOG_DEBUG", "dbg_printf", "trace_msg", "debug_log", "log_info",
    "LOG_INFO", "logmsg", "log_trace", "DPRINTF", "verbose_log",
)
_LOG_TEXT = (
    "enter", "starting", "processing request", "done", "called", "begin", "leaving",
    "handling input", "checking state", "retrying", "queued", "updating entry",
)
_COMMENTS = (
    "parse the header fields", "update statistics", "hand off to the next stage",
    "caller owns the result", "keep in sync with the table layout", "see RFC 1035, 4.1",
    "TODO: make this configurable", "fast path", "called with the lock held",
    "copy the name for later use", "this runs once per request", "validate input",
    "reset the state before reuse", "XXX: revisit after the protocol change",
    "walk the list and release entries", "note: may be called from the timer",
    "compute the length up front", "legacy behaviour, do not change", "store the result",
    "only used by the control path",
)
_STR_LITERALS = (
    "/var/run", "/tmp", "/etc/app", "guest", "default", "localhost", "none", "unknown", "root",
    "spool", "cache", "v1", "admin", "anonymous",
)
_ENV_NAMES = ("HOME", "TMPDIR", "APP_CONFIG", "LANG", "USER", "PORT", "LOG_LEVEL", "SHELL")
_ERR_VALUES = ("-1", "-1", "-EINVAL", "-EIO", "ERR_INVALID", "-2")
# fmt: on


@dataclass(frozen=True)
class _Style:
    """Layout choices drawn once per skeleton and shared by both of its variants."""

    indent: str
    kr: bool  # control-statement brace on the same line
    func_kr: bool  # function brace on the signature line
    braces: str  # single-statement bodies: "always", "never", "inline"
    camel: bool
    ret_own_line: bool
    ptr_left: bool  # "char* p" rather than "char *p"
    sizeof_paren: bool
    null_eq: bool  # "p == NULL" rather than "!p"
    kw_space: bool  # "if (" rather than "if("
    blank_lines: bool
    cxx_comments: bool
    macro_sizes: float  # probability that a size is a macro name rather than a literal


def _draw_style(r: random.Random) -> _Style:
    return _Style(
        indent=r.choice(("    ", "    ", "    ", "  ", "\t", "\t", "        ")),
        kr=r.random() < 0.7,
        func_kr=r.random() < 0.3,
        braces=r.choice(("always", "always", "never", "never", "inline")),
        camel=r.random() < 0.35,
        ret_own_line=r.random() < 0.25,
        ptr_left=r.random() < 0.15,
        sizeof_paren=r.random() < 0.8,
        null_eq=r.random() < 0.6,
        kw_space=r.random() < 0.9,
        blank_lines=r.random() < 0.6,
        cxx_comments=r.random() < 0.3,
        macro_sizes=r.choice((0.0, 0.3, 0.6)),
    )


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _norm(items: Sequence[str | list[_Line]]) -> _Body:
    out: _Body = []
    for item in items:
        if isinstance(item, str):
            out.append((0, item))
        else:
            out.extend(item)
    return out


class _Fn:
    """One function under construction.

    Separate random streams feed the pattern core, the names, the benign filler and the layout,
    so that the vulnerable and safe renderings of one skeleton (built from the same key) share
    everything the pattern does not deliberately change. Pattern code must draw every random
    choice and allocate every name *before* it branches on :attr:`vuln`.
    """

    def __init__(self, key: str, vulnerable: bool) -> None:
        self.vuln = vulnerable
        self.rng = random.Random(key + "/core")
        self.fill_rng = random.Random(key + "/fill")
        self._names = random.Random(key + "/names")
        self.s = _draw_style(random.Random(key + "/style"))
        self._used: set[str] = set()
        self.params: list[str] = []
        self.decls: list[str] = []
        self.body: _Body = []
        self.tail: _Body = []
        self.pre: _Body = []
        self.post: _Body = []
        self.ret_type = "int"
        self._err = "-1"
        self.ptr_params: list[str] = []
        self.name = self._func_name()

    # ---- names -------------------------------------------------------------------------------

    def style(self, snake: str) -> str:
        return _camel(snake) if self.s.camel else snake

    def _claim(self, name: str) -> str:
        base, k = name, 2
        while name in self._used:
            name = f"{base}{k}"
            k += 1
        self._used.add(name)
        return name

    def _func_name(self) -> str:
        r = self._names
        parts = [r.choice(_VERBS), *r.choice(_NOUNS).split("_")]
        scope = r.choice(_SCOPES) if r.random() < 0.4 else None
        if self.s.camel:
            name = _camel("_".join(parts))
            if scope:
                name = f"{scope}_{name}"
        else:
            name = "_".join([scope, *parts] if scope else parts)
        return self._claim(name)

    def var(self, role: str) -> str:
        """A fresh local or parameter name for ``role``."""
        pool = _ROLES[role]
        free = [w for w in pool if self.style(w) not in self._used]
        word = self._names.choice(free or pool)
        return self._claim(self.style(word))

    def helper(self, verbs: Sequence[str] = _VERBS) -> str:
        """A fresh name for an external helper function."""
        r = self._names
        words = [r.choice(verbs), *r.choice(_NOUNS).split("_")]
        return self._claim(self.style("_".join(words)))

    def struct(self) -> str:
        return "struct " + self._names.choice(_STRUCTS)

    def field(self, pool: Sequence[str]) -> str:
        return self.style(self._names.choice(pool))

    def macro(self, pool: Sequence[str]) -> str:
        return self._names.choice(pool)

    def size(self) -> str:
        """An array size: a literal or a constant-looking macro name."""
        if self._names.random() < self.s.macro_sizes:
            return self.macro(_SIZE_MACROS)
        return str(self._names.choice(_SIZES))

    # ---- declarations ------------------------------------------------------------------------

    def decl(self, ctype: str, name: str, suffix: str = "") -> str:
        """``ctype name`` with the pointer star placed per style (``ctype`` may end in ``*``)."""
        if ctype.endswith("*"):
            stars = len(ctype) - len(ctype.rstrip("*"))
            base = ctype.rstrip("*").rstrip()
            if self.s.ptr_left:
                return f"{base}{'*' * stars} {name}{suffix}"
            return f"{base} {'*' * stars}{name}{suffix}"
        return f"{ctype} {name}{suffix}"

    def param(self, ctype: str, name: str) -> str:
        self.params.append(self.decl(ctype, name))
        if ctype.endswith("*"):
            self.ptr_params.append(name)
        return name

    def local(
        self, ctype: str, name: str, *, array: str | None = None, init: str | None = None
    ) -> str:
        text = self.decl(ctype, name, f"[{array}]" if array else "")
        if init is not None:
            text += f" = {init}"
        self.decls.append(text + ";")
        return name

    # ---- returns -----------------------------------------------------------------------------

    def returns(self, ret_type: str) -> None:
        self.ret_type = ret_type
        if self.is_void:
            self._err = ""
        elif ret_type.endswith("*"):
            self._err = "NULL"
        else:
            self._err = self._names.choice(_ERR_VALUES)

    @property
    def is_void(self) -> bool:
        return self.ret_type.split()[-1] == "void"

    def err(self) -> str:
        return f"return {self._err};" if self._err else "return;"

    def ok(self) -> str:
        if self.is_void:
            return "return;"
        if self.ret_type.endswith("*"):
            return "return NULL;"
        return "return 0;"

    # ---- expressions -------------------------------------------------------------------------

    def sz(self, expr: str) -> str:
        if self.s.sizeof_paren or not expr.isidentifier():
            return f"sizeof({expr})"
        return f"sizeof {expr}"

    def null(self, expr: str) -> str:
        return f"{expr} == NULL" if self.s.null_eq else f"!{expr}"

    def nonnull(self, expr: str) -> str:
        return f"{expr} != NULL" if self.s.null_eq else expr

    def comment(self, text: str) -> str:
        return f"// {text}" if self.s.cxx_comments else f"/* {text} */"

    # ---- statements --------------------------------------------------------------------------

    def _kw(self, kw: str, inner: str) -> str:
        return f"{kw} ({inner})" if self.s.kw_space else f"{kw}({inner})"

    def block(
        self, head: str, body: Sequence[str | list[_Line]], orelse: Sequence[str | list[_Line]] = ()
    ) -> _Body:
        """``head { body } [else { orelse }]`` laid out in the function's brace style."""
        b, e = _norm(body), _norm(orelse)

        def simple(lines: _Body) -> bool:
            if len(lines) != 1:
                return False
            text = lines[0][1]
            return text.endswith(";") and not text.startswith(("if", "for", "while", "//", "/*"))

        omit = self.s.braces != "always" and simple(b) and (not e or simple(e))
        out: _Body = []
        if omit:
            if self.s.braces == "inline" and not e and len(head) + len(b[0][1]) < 70:
                return [(0, f"{head} {b[0][1]}")]
            out.append((0, head))
            out.append((1, b[0][1]))
            if e:
                out.append((0, "else"))
                out.append((1, e[0][1]))
            return out
        if self.s.kr:
            out.append((0, head + " {"))
            out.extend((lvl + 1, t) for lvl, t in b)
            if e:
                out.append((0, "} else {"))
                out.extend((lvl + 1, t) for lvl, t in e)
            out.append((0, "}"))
        else:
            out.append((0, head))
            out.append((0, "{"))
            out.extend((lvl + 1, t) for lvl, t in b)
            out.append((0, "}"))
            if e:
                out.append((0, "else"))
                out.append((0, "{"))
                out.extend((lvl + 1, t) for lvl, t in e)
                out.append((0, "}"))
        return out

    def if_(
        self, cond: str, *body: str | list[_Line], orelse: Sequence[str | list[_Line]] = ()
    ) -> _Body:
        return self.block(self._kw("if", cond), body, orelse)

    def for_(self, init: str, cond: str, step: str, *body: str | list[_Line]) -> _Body:
        return self.block(self._kw("for", f"{init}; {cond}; {step}"), body)

    def while_(self, cond: str, *body: str | list[_Line]) -> _Body:
        return self.block(self._kw("while", cond), body)

    def add(self, *items: str | list[_Line]) -> None:
        self.body.extend(_norm(items))

    def finish(self, *items: str | list[_Line]) -> None:
        self.tail.extend(_norm(items))

    # ---- output ------------------------------------------------------------------------------

    def render(self) -> str:
        s = self.s
        params = ", ".join(self.params) if self.params else "void"
        ret = self.ret_type
        sep = "" if ret.endswith("*") and not s.ret_own_line else " "
        if s.ret_own_line:
            head = f"{ret.rstrip()}\n{self.name}({params})"
        else:
            head = f"{ret}{sep}{self.name}({params})"
        lines = [head + " {"] if s.func_kr else [head, "{"]
        body: _Body = [(0, d) for d in self.decls]
        sections = [self.pre, self.body, self.post, self.tail]
        for section in sections:
            if not section:
                continue
            if body and s.blank_lines:
                body.append((0, ""))
            body.extend(section)
        for level, text in body:
            lines.append(s.indent * (level + 1) + text if text else "")
        lines.append("}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Patterns. Each draws all of its random choices first, then renders the vulnerable or the
# safe form depending on f.vuln.
# --------------------------------------------------------------------------------------------


def _tail_consume(f: _Fn, helper: str, args: str, ret_expr: bool) -> None:
    """End the function by handing the result to ``helper``."""
    if f.is_void:
        f.finish(f"{helper}({args});")
    elif ret_expr:
        f.finish(f"return {helper}({args});")
    else:
        f.finish(f"{helper}({args});", "return 0;")


def _cwe120(f: _Fn) -> None:
    """Unbounded string copy (strcpy / sprintf / strcat / memcpy of strlen+1) into a buffer."""
    r = f.rng
    f.returns(r.choice(("int", "int", "static int", "void", "static void")))
    src, buf, n = f.var("src"), f.var("buf"), f.var("len")
    obj = f.var("obj")
    size = f.size()
    helper = f.helper()
    st, fld = f.struct(), f.field(_PTR_FIELDS)
    form = r.choice(("strcpy", "strcpy", "sprintf", "strcat", "memcpy"))
    guard = r.randrange(4)
    lit = r.choice(_STR_LITERALS)
    fmt_kind = r.randrange(3)
    use_size_expr = r.random() < 0.35
    check_src = r.random() < 0.5
    ret_expr = r.random() < 0.5
    store = r.random() < 0.3 and not f.is_void
    src_first = r.random() < 0.7

    if store:
        if src_first:
            f.param("const char *", src)
            f.param(st + " *", obj)
        else:
            f.param(st + " *", obj)
            f.param("const char *", src)
    else:
        f.param("const char *", src)
    ctype = "char"
    f.local(ctype, buf, array=size)
    lim = size if use_size_expr else f.sz(buf)
    if check_src:
        f.add(f.if_(f.null(src), f.err()))

    if form == "strcpy":
        if f.vuln:
            f.add(f"strcpy({buf}, {src});")
        elif guard == 0:
            f.add(f.if_(f"strlen({src}) >= {lim}", f.err()), f"strcpy({buf}, {src});")
        elif guard == 1:
            f.add(f"strncpy({buf}, {src}, {lim} - 1);", f"{buf}[{lim} - 1] = '\\0';")
        elif guard == 2:
            f.add(f'snprintf({buf}, {lim}, "%s", {src});')
        else:
            f.add(f.if_(f"strlen({src}) + 1 > {lim}", f.err()), f"strcpy({buf}, {src});")
    elif form == "sprintf":
        fmt, args, extra = (
            ('"%s/%s"', f'"{lit}", {src}', len(lit) + 1),
            ('"name=%s"', src, 5),
            ('"<%s>"', src, 2),
        )[fmt_kind]
        if f.vuln:
            f.add(f"sprintf({buf}, {fmt}, {args});")
        elif guard % 2 == 0:
            f.add(f"snprintf({buf}, {lim}, {fmt}, {args});")
        else:
            f.add(
                f.if_(f"strlen({src}) + {extra} >= {lim}", f.err()),
                f"sprintf({buf}, {fmt}, {args});",
            )
    elif form == "strcat":
        f.add(f'strcpy({buf}, "{lit}/");')
        if f.vuln:
            f.add(f"strcat({buf}, {src});")
        elif guard % 2 == 0:
            f.add(f"strncat({buf}, {src}, {lim} - strlen({buf}) - 1);")
        else:
            f.add(
                f.if_(f"strlen({buf}) + strlen({src}) >= {lim}", f.err()),
                f"strcat({buf}, {src});",
            )
    else:
        f.local("size_t", n)
        f.add(f"{n} = strlen({src});")
        if f.vuln:
            f.add(f"memcpy({buf}, {src}, {n} + 1);")
        elif guard % 2 == 0:
            f.add(f.if_(f"{n} >= {lim}", f.err()), f"memcpy({buf}, {src}, {n} + 1);")
        else:
            f.add(
                f.if_(f"{n} >= {lim}", f"{n} = {lim} - 1;"),
                f"memcpy({buf}, {src}, {n});",
                f"{buf}[{n}] = '\\0';",
            )
    if store:
        f.finish(f"{obj}->{fld} = strdup({buf});", f"return {obj}->{fld} ? 0 : -1;")
    else:
        _tail_consume(f, helper, buf, ret_expr)


def _cwe121(f: _Fn) -> None:
    """Caller-controlled length copied into a stack buffer without comparing it to the size."""
    r = f.rng
    f.returns(r.choice(("int", "int", "static int", "void")))
    data, n, buf, i = f.var("data"), f.var("len"), f.var("buf"), f.var("loop")
    hdr = f.var("obj")
    st, len_field = f.struct(), f.field(("len", "length", "size", "body_len", "payload_len"))
    data_field = f.field(("data", "payload", "body", "bytes"))
    size = f.size()
    helper = f.helper()
    form = r.choice(("memcpy", "memcpy", "loop", "header"))
    guard = r.randrange(3)
    etype = r.choice(("unsigned char", "uint8_t", "char", "unsigned char"))
    ltype = r.choice(("size_t", "size_t", "unsigned int", "uint32_t", "unsigned"))
    use_size_expr = r.random() < 0.4
    zero_check = r.random() < 0.4
    ret_expr = r.random() < 0.5
    swap_params = r.random() < 0.3

    f.local(etype, buf, array=size)
    lim = size if use_size_expr else f.sz(buf)
    if form == "header":
        f.param(f"const {st} *", hdr)
        f.local(ltype, n)
        src = f"{hdr}->{data_field}"
        f.add(f"{n} = {hdr}->{len_field};")
    else:
        if swap_params:
            f.param(ltype, n)
            f.param(f"const {etype} *", data)
        else:
            f.param(f"const {etype} *", data)
            f.param(ltype, n)
        src = data
    if zero_check:
        f.add(f.if_(f"{n} == 0", f.ok()))
    if not f.vuln:
        if guard == 2 and form != "loop":
            f.add(f.if_(f"{n} > {lim}", f"{n} = {lim};"))
        else:
            f.add(f.if_(f"{n} > {lim}", f.err()))
    if form == "loop":
        f.local(ltype, i)
        f.add(f.for_(f"{i} = 0", f"{i} < {n}", f"{i}++", f"{buf}[{i}] = {src}[{i}];"))
    else:
        f.add(f"memcpy({buf}, {src}, {n});")
    _tail_consume(f, helper, f"{buf}, {n}", ret_expr)


def _cwe129(f: _Fn) -> None:
    """Array index from the caller used without a full range check."""
    r = f.rng
    obj, idx, val = f.var("obj"), f.var("idx"), f.var("val")
    st = f.struct()
    arr = f.field(_ARRAY_FIELDS)
    bound_macro = f.macro(_COUNT_MACROS)
    signed = r.random() < 0.6
    itype = r.choice(("int", "int", "long")) if signed else r.choice(("size_t", "unsigned int"))
    form = r.choice(("store", "load", "incr"))
    bound_kind = r.randrange(3)
    decoy = r.randrange(3)  # vulnerable variant: 0 none, 1 lower bound only, 2 obj NULL check
    obj_check = r.random() < 0.4
    global_array = r.random() < 0.3
    vtype = r.choice(("int", "unsigned int", "long", "uint16_t"))

    if form == "load":
        f.returns(vtype)
    else:
        f.returns(r.choice(("int", "static int")) if r.random() < 0.7 else "void")
    if global_array:
        globals_ = ("handler_table", "port_map", "counters", "slot_table", "levels")
        target = f.style(r.choice(globals_))
    else:
        f.param(st + " *", obj)
        target = f"{obj}->{arr}"
    f.param(itype, idx)
    if form == "store":
        f.param(vtype, val)
    bound = (bound_macro, f"ARRAY_SIZE({target})", f"{f.sz(target)} / {f.sz(target + '[0]')}")[
        bound_kind
    ]
    if obj_check and not global_array:
        f.add(f.if_(f.null(obj), f.err()))
    if f.vuln:
        if decoy == 1 and signed:
            f.add(f.if_(f"{idx} < 0", f.err()))
    else:
        cond = f"{idx} < 0 || {idx} >= {bound}" if signed else f"{idx} >= {bound}"
        f.add(f.if_(cond, f.err()))
    if form == "store":
        f.add(f"{target}[{idx}] = {val};")
        if not f.is_void:
            f.finish("return 0;")
    elif form == "load":
        f.finish(f"return {target}[{idx}];")
    else:
        f.add(f"{target}[{idx}]++;")
        if not f.is_void:
            f.finish(f"return {target}[{idx}];" if r.random() < 0.5 else "return 0;")


def _cwe134(f: _Fn) -> None:
    """A user-controlled string passed as the format argument of a printf-family call."""
    r = f.rng
    f.returns(r.choice(("void", "void", "int", "static void")))
    msg, code, fp, buf, fd = f.var("msg"), f.var("val"), f.var("fp"), f.var("buf"), f.var("fd")
    size = f.size()
    helper = f.helper(("send", "emit", "queue", "write", "publish", "forward"))
    form = r.choice(("printf", "fprintf", "fprintf_param", "syslog", "snprintf", "dprintf"))
    alt = r.random() < 0.4  # safe variant uses fputs / puts instead of "%s"
    with_code = r.random() < 0.5
    check_msg = r.random() < 0.4
    level = r.choice(("LOG_ERR", "LOG_WARNING", "LOG_INFO", "LOG_NOTICE", "LOG_DEBUG"))
    lead = r.choice(("error %d: ", "[%d] ", "code=%d ", "status %d - ", "warning(%d): "))

    if form == "fprintf_param":
        f.param("FILE *", fp)
    if form == "dprintf":
        f.param("int", fd)
    f.param("const char *", msg)
    if with_code:
        f.param("int", code)
    if check_msg:
        f.add(f.if_(f.null(msg), f.err()))
    stream = {"fprintf": "stderr", "fprintf_param": fp}.get(form, "stdout")
    if with_code:
        if form == "syslog":
            f.add(f'syslog({level}, "{lead}", {code});')
        elif form in ("fprintf", "fprintf_param"):
            f.add(f'fprintf({stream}, "{lead}", {code});')
        elif form == "dprintf":
            f.add(f'dprintf({fd}, "{lead}", {code});')
        else:
            f.add(f'printf("{lead}", {code});')
    if form == "printf":
        if f.vuln:
            f.add(f"printf({msg});")
        else:
            f.add(f"fputs({msg}, stdout);" if alt else f'printf("%s", {msg});')
    elif form in ("fprintf", "fprintf_param"):
        if f.vuln:
            f.add(f"fprintf({stream}, {msg});")
        else:
            f.add(f"fputs({msg}, {stream});" if alt else f'fprintf({stream}, "%s", {msg});')
    elif form == "syslog":
        f.add(f"syslog({level}, {msg});" if f.vuln else f'syslog({level}, "%s", {msg});')
    elif form == "dprintf":
        f.add(f"dprintf({fd}, {msg});" if f.vuln else f'dprintf({fd}, "%s", {msg});')
    else:
        f.local("char", buf, array=size)
        lim = f.sz(buf)
        if f.vuln:
            f.add(f"snprintf({buf}, {lim}, {msg});")
        else:
            f.add(f'snprintf({buf}, {lim}, "%s", {msg});')
        f.add(f"{helper}({buf});")
    if not f.is_void:
        f.finish("return 0;")


def _cwe190(f: _Fn) -> None:
    """Element count times element size computed without an overflow check, then allocated."""
    r = f.rng
    count, esz, p = f.var("count"), f.var("esz"), f.var("ptr")
    total, i = f.var("len"), f.var("loop")
    src, out = f.var("data"), f.var("obj")
    st = f.struct()
    fld = f.field(_INT_FIELDS)
    limit_macro = f.macro(_COUNT_MACROS)
    ctype = r.choice(("size_t", "size_t", "unsigned int", "uint32_t", "unsigned"))
    size_kind = r.choice(("param", "sizeof_type", "sizeof_deref"))
    form = r.choice(("inline", "inline", "total"))
    guard = r.randrange(3)
    init = r.choice(("loop", "memset", "none", "copy"))
    shape = r.choice(("ptr", "ptr", "out"))
    zero_check = r.random() < 0.5
    alloc = r.choice(("malloc", "malloc", "xmalloc", "kmalloc"))

    bytes_elem = size_kind == "param"
    ptype = r.choice(("unsigned char *", "char *", "uint8_t *")) if bytes_elem else st + " *"
    if shape == "ptr":
        f.returns(ptype if r.random() < 0.6 or bytes_elem else "void *")
    else:
        f.returns(r.choice(("int", "static int")))
    if init == "copy":
        f.param("const void *", src)
    f.param(ctype, count)
    if bytes_elem:
        f.param(ctype, esz)
        esz_expr = esz
    else:
        esz_expr = f.sz(st) if size_kind == "sizeof_type" else f.sz("*" + p)
    if shape == "out":
        f.param(ptype + "*", out)
    f.local(ptype, p)
    if form == "total":
        f.local(ctype, total)
    if init == "loop":
        f.local(ctype, i)
    maxv = {"size_t": "SIZE_MAX", "uint32_t": "UINT32_MAX"}.get(ctype, "UINT_MAX")

    if zero_check:
        f.add(f.if_(f"{count} == 0", f.err()))
    use_calloc = not f.vuln and guard == 2 and form == "inline"
    if not f.vuln and not use_calloc:
        if guard == 1:
            f.add(f.if_(f"{count} > {limit_macro}", f.err()))
        elif bytes_elem:
            f.add(f.if_(f"{esz} != 0 && {count} > {maxv} / {esz}", f.err()))
        else:
            f.add(f.if_(f"{count} > {maxv} / {esz_expr}", f.err()))
    product = f"{count} * {esz_expr}"
    kflags = ", GFP_KERNEL" if alloc == "kmalloc" else ""
    if use_calloc:
        f.add(f"{p} = calloc({count}, {esz_expr});")
    elif form == "total":
        f.add(f"{total} = {product};", f"{p} = {alloc}({total}{kflags});")
        product = total
    else:
        f.add(f"{p} = {alloc}({product}{kflags});")
    f.add(f.if_(f.null(p), f.err()))
    if init == "loop":
        rhs = f"{p}[{i}] = 0;" if bytes_elem else f"{p}[{i}].{fld} = 0;"
        f.add(f.for_(f"{i} = 0", f"{i} < {count}", f"{i}++", rhs))
    elif init == "memset":
        f.add(f"memset({p}, 0, {product});")
    elif init == "copy":
        f.add(f"memcpy({p}, {src}, {product});")
    if shape == "out":
        f.finish(f"*{out} = {p};", "return 0;")
    else:
        f.finish(f"return {p};")


def _cwe193(f: _Fn) -> None:
    """Off-by-one: ``<=`` loop bound, terminator written at ``buf[size]``, ``>`` for ``>=``."""
    r = f.rng
    arr, i, src, n, buf, fd = (
        f.var("buf"),
        f.var("loop"),
        f.var("data"),
        f.var("len"),
        f.var("buf"),
        f.var("fd"),
    )
    obj = f.var("obj")
    st, afield = f.struct(), f.field(_ARRAY_FIELDS)
    size = f.size()
    count_macro = f.macro(_COUNT_MACROS)
    helper = f.helper()
    reader = r.choice(("read", "recv", "fread", "read_bytes"))
    form = r.choice(("loop", "loop", "term", "check"))
    etype = r.choice(("int", "unsigned int", "long", "char", "uint16_t", "double"))
    rhs_kind = r.randrange(3)
    bound_kind = r.randrange(3)
    in_struct = r.random() < 0.35
    k = r.randint(2, 9)
    check_kind = r.randrange(2)
    ret_expr = r.random() < 0.5
    ntype = r.choice(("ssize_t", "int", "long"))

    f.returns(r.choice(("int", "int", "static int")))
    if form == "loop":
        if in_struct:
            f.param(st + " *", obj)
            target = f"{obj}->{afield}"
            bound = count_macro if bound_kind == 0 else f"ARRAY_SIZE({target})"
        else:
            f.local(etype, arr, array=size)
            target = arr
            bound = (size, f"ARRAY_SIZE({arr})", f"{f.sz(arr)} / {f.sz(arr + '[0]')}")[bound_kind]
        if rhs_kind == 0:
            f.param(f"const {etype} *", src)
            rhs = f"{src}[{i}]"
        elif rhs_kind == 1:
            rhs = f"{i} * {k}"
        else:
            rhs = "0"
        f.local("int" if bound_kind == 0 and not in_struct else "size_t", i)
        op = "<=" if f.vuln else "<"
        f.add(f.for_(f"{i} = 0", f"{i} {op} {bound}", f"{i}++", f"{target}[{i}] = {rhs};"))
        _tail_consume(f, helper, target if in_struct else f"{arr}, {bound}", ret_expr)
    elif form == "term":
        f.local("char", buf, array=size)
        f.local(ntype, n)
        if reader == "fread":
            f.param("FILE *", fd)
        else:
            f.param("int", fd)
        want = f.sz(buf) if f.vuln else f"{f.sz(buf)} - 1"
        call = {
            "read": f"read({fd}, {buf}, {want})",
            "recv": f"recv({fd}, {buf}, {want}, 0)",
            "fread": f"fread({buf}, 1, {want}, {fd})",
            "read_bytes": f"{f.style('read_bytes')}({fd}, {buf}, {want})",
        }[reader]
        f.add(f"{n} = {call};", f.if_(f"{n} <= 0", f.err()), f"{buf}[{n}] = '\\0';")
        _tail_consume(f, helper, buf, ret_expr)
    else:
        f.local("char", buf, array=size)
        f.param("const char *", src)
        f.param("size_t", n)
        lim = f.sz(buf) if check_kind == 0 else size
        f.add(
            f.if_(f"{n} > {lim}" if f.vuln else f"{n} >= {lim}", f.err()),
            f"memcpy({buf}, {src}, {n});",
            f"{buf}[{n}] = '\\0';",
        )
        _tail_consume(f, helper, buf, ret_expr)


def _cwe195(f: _Fn) -> None:
    """Signed length: an upper-bound check lets a negative value through to memcpy."""
    r = f.rng
    src, n, buf, text = f.var("data"), f.var("len"), f.var("buf"), f.var("src")
    size = f.size()
    helper = f.helper()
    getter = f.helper(("get", "read", "parse", "decode", "extract"))
    form = r.choice(("param", "param", "atoi", "getter"))
    ltype = r.choice(("int", "int", "long", "short", "int32_t"))
    guard = r.randrange(3)
    use_size_expr = r.random() < 0.4
    ret_expr = r.random() < 0.5
    copier = r.choice(("memcpy", "memcpy", "memmove"))

    f.returns(r.choice(("int", "static int")))
    f.local("char", buf, array=size)
    # The bound must have a signed type: against sizeof (size_t) a negative length would be
    # converted to a huge unsigned value and rejected, so the weakness would not be real.
    lim = size if use_size_expr else f"(int){f.sz(buf)}"
    f.param("const char *", src)
    if form == "param":
        f.param(ltype, n)
    elif form == "atoi":
        f.param("const char *", text)
        f.local(ltype, n)
        f.add(f"{n} = atoi({text});")
    else:
        f.local(ltype, n)
        f.add(f"{n} = {getter}({src});")
    if f.vuln:
        f.add(f.if_(f"{n} > {lim}", f.err()))
    elif guard == 0:
        f.add(f.if_(f"{n} < 0 || {n} > {lim}", f.err()))
    elif guard == 1:
        f.add(f.if_(f"{n} <= 0 || {n} > {lim}", f.err()))
    else:
        f.add(f.if_(f"{n} < 0", f.err()), f.if_(f"{n} > {lim}", f.err()))
    f.add(f"{copier}({buf}, {src}, {n});")
    _tail_consume(f, helper, f"{buf}, {n}", ret_expr)


def _cwe415(f: _Fn) -> None:
    """A pointer freed on an error path and again on the common exit path."""
    r = f.rng
    buf, n, rc, obj, label = f.var("ptr"), f.var("len"), f.var("rc"), f.var("obj"), f.var("label")
    st = f.struct()
    fld = f.field(_PTR_FIELDS)
    filler = f.helper(("read", "fill", "load", "decode", "parse"))
    consumer = f.helper(("process", "handle", "apply", "store", "emit"))
    form = r.choice(("branch", "goto", "field"))
    guard = r.randrange(2)
    btype = r.choice(("char *", "unsigned char *", "uint8_t *"))
    check_alloc = r.random() < 0.85

    f.returns(r.choice(("int", "static int")))
    if form == "field":
        f.param(st + " *", obj)
        target = f"{obj}->{fld}"
        f.local("int", rc)
        f.add(f"{rc} = {consumer}({target});")
        release = f"free({target});"
        body = [release] if f.vuln else [release, f"{target} = NULL;"]
        f.add(f.if_(f"{rc} < 0", *body))
        f.finish(f"free({target});", f"{target} = NULL;", f"return {rc};")
        return
    f.param("size_t", n)
    f.local(btype, buf)
    f.local("int", rc)
    f.add(f"{buf} = malloc({n});")
    if check_alloc:
        f.add(f.if_(f.null(buf), f.err()))
    f.add(f"{rc} = {filler}({buf}, {n});")
    if form == "branch":
        if f.vuln:
            f.add(f.if_(f"{rc} < 0", f"free({buf});"))
        elif guard == 0:
            f.add(f.if_(f"{rc} < 0", f"free({buf});", f"return {rc};"))
        else:
            f.add(f.if_(f"{rc} < 0", f"free({buf});", f"{buf} = NULL;"))
        f.add(f.if_(f"{rc} >= 0", f"{rc} = {consumer}({buf}, {rc});"))
        f.finish(f"free({buf});", f"return {rc};")
    else:
        if f.vuln:
            err_path = [f"free({buf});", f"goto {label};"]
        elif guard == 0:
            err_path = [f"goto {label};"]
        else:
            err_path = [f"free({buf});", f"{buf} = NULL;", f"goto {label};"]
        f.add(f.if_(f"{rc} < 0", *err_path))
        f.add(f"{rc} = {consumer}({buf}, {rc});")
        f.finish([(-1, f"{label}:")], f"free({buf});", f"return {rc};")


def _cwe416(f: _Fn) -> None:
    """Memory read or written after it was released."""
    r = f.rng
    p, nxt, obj, head = f.var("ptr"), f.var("next"), f.var("obj"), f.var("ptr")
    st = f.struct()
    ifld, pfld, nfld = f.field(_INT_FIELDS), f.field(_PTR_FIELDS), f.style("next")
    logger = f.macro(_LOGGERS)
    consumer = f.helper(("process", "handle", "apply", "store", "emit", "notify"))
    form = r.choice(("log_after", "return_next", "list_loop", "field_reuse"))
    text = r.choice(("releasing %d", "closing %d", "dropped entry %d", "freed id=%d"))
    guard = r.randrange(2)

    if form == "log_after":
        f.returns(r.choice(("void", "static void", "int")))
        f.param(st + " *", p)
        f.add(f.if_(f.null(p), f.err()))
        release = [f"free({p}->{pfld});", f"free({p});"]
        use = f'{logger}("{text}\\n", {p}->{ifld});'
        f.add(*([*release, use] if f.vuln else [use, *release]))
        if not f.is_void:
            f.finish("return 0;")
    elif form == "return_next":
        f.returns(st + " *")
        f.param(st + " *", p)
        f.local(st + " *", nxt)
        f.add(f.if_(f.null(p), "return NULL;"))
        take = f"{nxt} = {p}->{nfld};"
        release = [f"{consumer}({p});", f"free({p});"] if guard else [f"free({p});"]
        f.add(*([*release, take] if f.vuln else [take, *release]))
        f.finish(f"return {nxt};")
    elif form == "list_loop":
        f.returns(r.choice(("void", "static void")))
        f.param(st + " *", head)
        f.local(st + " *", p)
        f.local(st + " *", nxt)
        f.add(f"{p} = {head};")
        if f.vuln:
            loop = [f"free({p}->{pfld});", f"free({p});", f"{p} = {p}->{nfld};"]
        else:
            loop = [f"{nxt} = {p}->{nfld};", f"free({p}->{pfld});", f"free({p});", f"{p} = {nxt};"]
        f.add(f.while_(f.nonnull(p), *loop))
    else:
        f.returns(r.choice(("int", "static int")))
        f.param(st + " *", obj)
        target = f"{obj}->{pfld}"
        release = [f"free({target});"] if f.vuln else [f"free({target});", f"{target} = NULL;"]
        f.add(f.if_(f"{obj}->{ifld} == 0", *release))
        f.add(f.if_(f.nonnull(target), f"return {consumer}({target});"))
        f.finish("return 0;")


def _cwe457(f: _Fn) -> None:
    """A local variable read on a path where it was never assigned."""
    r = f.rng
    res, mode, a, b, i, src, nm = (
        f.var("rc"),
        f.var("mode"),
        f.var("val"),
        f.var("val"),
        f.var("loop"),
        f.var("data"),
        f.var("copy"),
    )
    n = f.var("len")
    modes = ("MODE_READ", "MODE_WRITE", "OP_GET", "OP_SET", "1", "2", "3", "KIND_A", "KIND_B")
    m1, m2 = r.sample(modes, 2)
    helper = f.helper(("lookup", "get", "fetch", "resolve", "find"))
    consumer = f.helper(("emit", "store", "register", "send", "publish"))
    form = r.choice(("branches", "switch", "pointer", "accumulate"))
    guard = r.randrange(2)
    vtype = r.choice(("int", "long", "unsigned int", "double"))
    init_val = r.choice(("0", "-1", "1"))
    lit = r.choice(_STR_LITERALS)

    if form == "branches":
        f.returns(vtype)
        f.param("int", mode)
        f.param(vtype, a)
        f.param(vtype, b)
        init = init_val if not f.vuln and guard == 0 else None
        f.local(vtype, res, init=init)
        orelse: list[str | list[_Line]] = (
            [f.if_(f"{mode} == {m2}", f"{res} = {a} - {b};")]
            if f.vuln or guard == 0
            else [f.if_(f"{mode} == {m2}", f"{res} = {a} - {b};", orelse=[f"{res} = {init_val};"])]
        )
        f.add(f.if_(f"{mode} == {m1}", f"{res} = {a} + {b};", orelse=orelse))
        f.finish(f"return {res};")
    elif form == "switch":
        f.returns(vtype)
        f.param("int", mode)
        f.param(vtype, a)
        init = init_val if not f.vuln and guard == 0 else None
        f.local(vtype, res, init=init)
        cases: _Body = [
            (0, f"case {m1}:"),
            (1, f"{res} = {a} * 2;"),
            (1, "break;"),
            (0, f"case {m2}:"),
            (1, f"{res} = {a} / 2;"),
            (1, "break;"),
        ]
        if not f.vuln and guard == 1:
            cases += [(0, "default:"), (1, f"{res} = {init_val};"), (1, "break;")]
        f.add(f.block(f._kw("switch", mode), [cases]))
        f.finish(f"return {res};")
    elif form == "pointer":
        f.returns(r.choice(("int", "static int")))
        f.param("const char *", src)
        f.param("int", mode)
        init = f'"{lit}"' if not f.vuln and guard == 0 else None
        f.local("const char *", nm, init=init)
        body: list[str | list[_Line]] = [f"{nm} = {helper}({src});"]
        orelse = [f'{nm} = "{lit}";'] if not f.vuln and guard == 1 else []
        f.add(f.if_(f"{mode} != 0", *body, orelse=orelse))
        f.finish(f"return {consumer}({nm});")
    else:
        f.returns(vtype)
        f.param(f"const {vtype} *", src)
        f.param("size_t", n)
        f.local("size_t", i)
        f.local(vtype, res, init=None if f.vuln else "0")
        f.add(f.for_(f"{i} = 0", f"{i} < {n}", f"{i}++", f"{res} += {src}[{i}];"))
        f.finish(f"return {res};")


def _cwe476(f: _Fn) -> None:
    """The result of malloc / a lookup / strchr / getenv / fopen dereferenced unchecked."""
    r = f.rng
    p, tbl, key, line, sep, val, fp, path, buf = (
        f.var("ptr"),
        f.var("obj"),
        f.var("key"),
        f.var("src"),
        f.var("next"),
        f.var("val"),
        f.var("fp"),
        f.var("src"),
        f.var("buf"),
    )
    st, st2 = f.struct(), f.struct()
    ifld, ifld2 = f.field(_INT_FIELDS), f.field(("value", "payload_len", "hits", "expires"))
    lookup = f.helper(("lookup", "find", "get", "search", "resolve"))
    consumer = f.helper(("process", "handle", "store", "emit", "apply"))
    size = f.size()
    form = r.choice(("malloc", "lookup", "strchr", "getenv", "fopen"))
    guard = r.randrange(2)
    decoy = r.random() < 0.5
    chr_fn, chr_arg = r.choice(
        (("strchr", "':'"), ("strchr", "'='"), ("strrchr", "'/'"), ("strstr", '"://"'))
    )
    env = r.choice(_ENV_NAMES)
    default = r.choice(("0", "-1", "8080", "1"))
    alloc = r.choice(("malloc", "malloc", "xmalloc"))
    init_val = r.randint(1, 64)
    logger = f.macro(_LOGGERS)
    why = r.choice(("lookup failed", "out of memory", "no entry", "missing value", "not found"))

    def check(expr: str, ret: str) -> list[_Line]:
        if guard == 0:
            return f.if_(f.null(expr), ret)
        return f.if_(f.null(expr), f'{logger}("%s: {why}\\n", __func__);', ret)

    if form == "malloc":
        f.returns(st + " *")
        f.param("int", val)
        f.local(st + " *", p)
        if decoy:
            f.add(f.if_(f"{val} < 0", "return NULL;"))
        f.add(f"{p} = {alloc}({f.sz('*' + p)});")
        if not f.vuln:
            f.add(check(p, "return NULL;"))
        f.add(f"{p}->{ifld} = {val};", f"{p}->{ifld2} = {init_val};")
        f.finish(f"return {p};")
    elif form == "lookup":
        f.returns(r.choice(("int", "static int", "long")))
        f.param(st2 + " *", tbl)
        f.param("const char *", key)
        f.local(st + " *", p)
        if decoy:
            f.add(f.if_(f"{f.null(tbl)} || {f.null(key)}", f.err()))
        f.add(f"{p} = {lookup}({tbl}, {key});")
        if not f.vuln:
            f.add(check(p, f.err()))
        f.add(f"{p}->{ifld}++;")
        f.finish(f"return {p}->{ifld2};")
    elif form == "strchr":
        f.returns(r.choice(("int", "static int")))
        f.param("char *", line)
        f.local("char *", sep)
        if decoy:
            f.add(f.if_(f.null(line), f.err()))
        f.add(f"{sep} = {chr_fn}({line}, {chr_arg});")
        if not f.vuln:
            f.add(check(sep, f.err()))
        f.add(f"*{sep} = '\\0';")
        f.finish(f"return {consumer}({line}, {sep} + 1);")
    elif form == "getenv":
        f.returns(r.choice(("int", "static int", "long")))
        f.local("const char *", val)
        f.add(f'{val} = getenv("{env}");')
        if not f.vuln:
            f.add(check(val, f"return {default};"))
        f.finish(f"return atoi({val});" if r.random() < 0.5 else f"return strtol({val}, NULL, 10);")
    else:
        f.returns(r.choice(("int", "static int")))
        f.param("const char *", path)
        f.local("FILE *", fp)
        f.local("char", buf, array=size)
        if decoy:
            f.add(f.if_(f.null(path), f.err()))
        f.add(f'{fp} = fopen({path}, "r");')
        if not f.vuln:
            f.add(check(fp, f.err()))
        f.add(f.if_(f"fgets({buf}, {f.sz(buf)}, {fp}) == NULL", f"{buf}[0] = '\\0';"))
        f.add(f"fclose({fp});")
        f.finish(f"return {consumer}({buf});")


_PATTERNS: dict[str, Callable[[_Fn], None]] = {
    "CWE-120": _cwe120,
    "CWE-121": _cwe121,
    "CWE-129": _cwe129,
    "CWE-134": _cwe134,
    "CWE-190": _cwe190,
    "CWE-193": _cwe193,
    "CWE-195": _cwe195,
    "CWE-415": _cwe415,
    "CWE-416": _cwe416,
    "CWE-457": _cwe457,
    "CWE-476": _cwe476,
}


# --------------------------------------------------------------------------------------------
# Benign filler shared by both variants of a skeleton: logging, counters, unrelated loops,
# comments, early returns on flags, locking. Each adds to f.pre (before the pattern code) and/or
# f.post (after it, before the final return).
# --------------------------------------------------------------------------------------------


def _place(f: _Fn, r: random.Random, lines: _Body, pre_bias: float = 0.6) -> None:
    (f.pre if r.random() < pre_bias else f.post).extend(lines)


def _fill_comment(f: _Fn, r: random.Random) -> None:
    _place(f, r, [(0, f.comment(r.choice(_COMMENTS)))], 0.7)


def _fill_log(f: _Fn, r: random.Random) -> None:
    logger, text = r.choice(_LOGGERS), r.choice(_LOG_TEXT)
    if r.random() < 0.5:
        stmt = f'{logger}("%s: {text}\\n", __func__);'
    else:
        stmt = f'{logger}("{f.name}: {text}\\n");'
    _place(f, r, [(0, stmt)], 0.7)


def _fill_counter(f: _Fn, r: random.Random) -> None:
    group = f.style(r.choice(("stats", "g_stats", "counters", "metrics", "perf")))
    fld = f.style(r.choice(("calls", "hits", "requests", "lookups", "errors_seen", "bytes_in")))
    stmt = r.choice((f"{group}.{fld}++;", f"{group}.{fld} += 1;", f"++{group}.{fld};"))
    _place(f, r, [(0, stmt)])


def _fill_flags(f: _Fn, r: random.Random) -> None:
    flag = f.var("flag")
    f.param(r.choice(("unsigned int", "int", "unsigned long", "uint32_t")), flag)
    bit = r.choice(("0x1", "0x4", "0x10", "0x80", "FLAG_QUIET", "OPT_DRY_RUN", "F_NOWAIT"))
    f.pre.extend(f.if_(f"{flag} & {bit}", f.ok()))


def _fill_sum(f: _Fn, r: random.Random) -> None:
    k, acc = f.var("loop"), f.var("acc")
    f.local(r.choice(("unsigned int", "int", "size_t")), k)
    f.local(r.choice(("unsigned long", "unsigned int", "uint32_t", "long")), acc, init="0")
    op = r.choice(("<=", "<=", "<"))
    limit = r.choice(("4", "8", "16", "32", "3", "NR_ROUNDS", "HASH_ROUNDS"))
    c = r.randint(2, 37)
    update = r.choice(
        (f"{acc} += {k} * {c};", f"{acc} ^= {k} << {c % 7 + 1};", f"{acc} = {acc} * 31 + {k};")
    )
    sink = f.style(r.choice(("record_metric", "update_hash", "stats_add", "mix_entropy")))
    start = "1" if op == "<=" else "0"
    loop = f.for_(f"{k} = {start}", f"{k} {op} {limit}", f"{k}++", update)
    _place(f, r, [*loop, (0, f"{sink}({acc});")], 0.5)


def _fill_lock(f: _Fn, r: random.Random) -> None:
    lock = f.style(r.choice(("table_lock", "state_lock", "list_lock", "cache_mutex", "reg_lock")))
    take, drop = r.choice(
        (
            ("mutex_lock", "mutex_unlock"),
            ("pthread_mutex_lock", "pthread_mutex_unlock"),
            ("spin_lock", "spin_unlock"),
        )
    )
    f.pre.append((0, f"{take}(&{lock});"))
    f.post.append((0, f"{drop}(&{lock});"))


def _fill_tag(f: _Fn, r: random.Random) -> None:
    tag = f.var("tag")
    f.local("char", tag, array=str(r.choice((16, 24, 32, 48, 64))))
    word = r.choice(("req", "conn", "job", "evt", "sess", "id"))
    counter = f.style(r.choice(("next_id", "seq_no", "g_serial", "request_seq")))
    sink = f.helper(("register", "remember", "announce", "record", "attach"))
    lines = [
        (0, f'snprintf({tag}, {f.sz(tag)}, "{word}-%d", {counter}++);'),
        (0, f"{sink}({tag});"),
    ]
    _place(f, r, lines, 0.6)


def _fill_strdup(f: _Fn, r: random.Random) -> None:
    cp = f.var("copy")
    f.local("char *", cp)
    sink = f.helper(("register", "remember", "cache", "push", "record"))
    lines = [
        (0, f'{cp} = strdup("{r.choice(_STR_LITERALS)}");'),
        *f.if_(f.nonnull(cp), f"{sink}({cp});", f"free({cp});"),
    ]
    _place(f, r, lines, 0.5)


def _fill_time(f: _Fn, r: random.Random) -> None:
    now = f.var("now")
    f.local("time_t", now)
    f.pre.append((0, f"{now} = time(NULL);"))
    target = f.style(r.choice(("last_seen", "last_update", "g_last_access", "touched_at")))
    f.post.append((0, f"{target} = {now};"))


def _fill_assert(f: _Fn, r: random.Random) -> None:
    if not f.ptr_params:
        return
    p = r.choice(f.ptr_params)
    f.pre.insert(0, (0, f"assert({p} != NULL);" if r.random() < 0.5 else f"assert({p});"))


_FILLERS: tuple[Callable[[_Fn, random.Random], None], ...] = (
    _fill_comment,
    _fill_comment,
    _fill_log,
    _fill_log,
    _fill_counter,
    _fill_flags,
    _fill_sum,
    _fill_lock,
    _fill_tag,
    _fill_strdup,
    _fill_time,
    _fill_assert,
)


def _build(template: str, key: str, vulnerable: bool) -> str:
    """Render one variant of the skeleton identified by ``key``."""
    f = _Fn(key, vulnerable)
    _PATTERNS[template](f)
    r = f.fill_rng
    for filler in r.sample(_FILLERS, r.choice((0, 1, 1, 2, 2, 3, 3, 4))):
        filler(f, r)
    return f.render()


def _schedule(rng: random.Random, count: int) -> list[str]:
    """``count`` template names: shuffled rounds over every template, so all appear evenly."""
    out: list[str] = []
    while len(out) < count:
        block = list(CWE_TEMPLATES)
        rng.shuffle(block)
        out.extend(block)
    return out[:count]


def _fresh(
    rng: random.Random, seed: int, template: str, labels: Sequence[int], seen: set[str]
) -> list[str]:
    """Render a new skeleton for each label in ``labels``; no text may repeat one in ``seen``."""
    for _ in range(1000):
        key = f"{seed}:{rng.getrandbits(64):016x}"
        funcs = [_build(template, key, bool(label)) for label in labels]
        if len(set(funcs)) == len(funcs) and seen.isdisjoint(funcs):
            seen.update(funcs)
            return funcs
    raise RuntimeError(f"could not draw a new {template} function after 1000 tries")


def _record(seed: int, index: int, func: str, target: int, cwe: str, pair: str) -> dict:
    return {
        "id": f"synth-{seed}-{index}",
        "func": func,
        "target": target,
        "cwe": cwe,
        "pair": pair,
        "lang": "c",
    }


def generate(n: int, seed: int = 0, *, paired: bool = False) -> list[dict]:
    """Generate ``n`` labelled C functions.

    Each record is ``{"id", "func", "target", "cwe", "pair", "lang"}``: ``target`` is 1 for a
    vulnerable function and 0 for a safe one, ``cwe`` names the pattern (one of
    :data:`CWE_TEMPLATES`, for both variants), ``lang`` is ``"c"``. Ids are
    ``synth-<seed>-<index>``; every ``func`` text is distinct.

    Labels are exactly balanced (for odd ``n`` they differ by one) and the templates are spread
    evenly over each label. With ``paired=False`` every function comes from its own skeleton and
    has its own ``pair`` id. With ``paired=True`` each skeleton yields a vulnerable and a safe
    variant that share a ``pair`` id and most of their code (like before/after-fix data); an odd
    ``n`` leaves one last skeleton with a single variant.

    The output depends only on ``(n, seed, paired)``.

    Raises:
        TypeError: ``n`` or ``seed`` is not an int.
        ValueError: ``n`` is negative.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    records: list[dict] = []
    if paired:
        n_pairs, odd = divmod(n, 2)
        for k, template in enumerate(_schedule(rng, n_pairs + odd)):
            labels: tuple[int, ...] = (1, 0) if rng.random() < 0.5 else (0, 1)
            if k == n_pairs:
                labels = labels[:1]
            funcs = _fresh(rng, seed, template, labels, seen)
            for label, func in zip(labels, funcs, strict=True):
                records.append(
                    _record(seed, len(records), func, label, template, f"synth-{seed}-p{k}")
                )
        return records
    targets = [1] * (n // 2) + [0] * (n // 2)
    if n % 2:
        targets.append(rng.randrange(2))
    rng.shuffle(targets)
    plans = {label: iter(_schedule(rng, targets.count(label))) for label in (0, 1)}
    for index, label in enumerate(targets):
        template = next(plans[label])
        (func,) = _fresh(rng, seed, template, (label,), seen)
        records.append(_record(seed, index, func, label, template, f"synth-{seed}-p{index}"))
    return records
