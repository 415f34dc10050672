/* The audit verifier's hot loops in C: leaf and node hashes, and the canonical-line check.

   Optional: `offboard.audit._native` is built by hatch_build.py when a C compiler and OpenSSL's
   headers are at hand; without it the same checks run in Python (_entry.py, _merkle.py). Each
   function here answers exactly what its Python counterpart answers (tests/audit/test_audit_native.py
   compares them on every code point and on random and mutated lines).

   canonical_array(lines) -> bytes | int
       b"[" + b",".join(lines) + b"]" if every line is an entry as the writer writes it (each line
       being one whole value, the array's items are the lines' values), else the index of the first
       line that is not. A line is: one JSON object, byte for byte what Python's
       json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes for the
       value it parses to (keys strictly ascending by code point, so no duplicates; no whitespace;
       strings in strict UTF-8 with no surrogates, with only \" \\ \b \f \n \r \t and \u00xx for the
       other control characters escaped, hex in lower case), with no floats, no NaN or Infinity,
       no -0, and every integer within +-(2**53-1). A line nested deeper than MAX_DEPTH counts as
       not proven (the Python parser then decides, as for any line refused here).

   leaf_hashes(lines) -> bytes
       SHA-256(0x00 || line) of each line, 32 bytes each (RFC 9162 section 2.1.1).

   node_hashes(level, skip, pairs) -> bytes
       SHA-256(0x01 || left || right) for `pairs` pairs of 32-byte hashes read from `level`
       starting at byte `skip`.

   line_starts(data, base) -> bytes
   span_canonical_array(data, starts, first, stop) -> bytes | int
   span_leaf_hashes(data, starts) -> bytes
       canonical_array() and leaf_hashes() for a stretch of the log read whole: `data` holds whole lines, each ending in LF,
       read from file offset `base`; `starts` (what line_starts gives, as native uint64) holds each
       line's offset and one past the last. No bytes object per line is made.
*/
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define MAX_DEPTH 256
#define MAX_DIGITS 16
#define MAX_INT 9007199254740991ULL /* 2**53 - 1 */

typedef const unsigned char *cursor;

static cursor value(cursor p, cursor end, int depth);

/* Bytes that stand for themselves inside a string: printable ASCII but the quote and the backslash. */
static unsigned char plain[256];

static void
init_plain(void)
{
    for (int c = 0x20; c < 0x80; c++)
        plain[c] = (c != '"' && c != '\\');
}

/* A string's body after its opening quote; returns just past the closing quote, or NULL. */
static cursor
string(cursor p, cursor end)
{
    while (p < end) {
        while (p < end && plain[*p])
            p++;
        if (p >= end)
            return NULL;
        unsigned char c = *p;
        if (c == '"')
            return p + 1;
        if (c == '\\') {
            if (p + 1 >= end)
                return NULL;
            switch (p[1]) {
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u': {
                /* only \u00xx for a control character without a short escape, lower-case hex */
                if (end - p < 6 || p[2] != '0' || p[3] != '0')
                    return NULL;
                unsigned char h = p[4], l = p[5];
                int hi = (h == '0') ? 0 : (h == '1') ? 1 : -1;
                int lo = (l >= '0' && l <= '9') ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : -1;
                if (hi < 0 || lo < 0)
                    return NULL;
                int code = hi * 16 + lo;
                if (code == 0x08 || code == 0x09 || code == 0x0a || code == 0x0c || code == 0x0d)
                    return NULL;
                p += 6;
                continue;
            }
            default:
                return NULL;
            }
        }
        if (c < 0x20)
            return NULL;
        if (c < 0x80) {
            p++;
            continue;
        }
        /* strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF */
        if (c >= 0xc2 && c <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80)
                return NULL;
            p += 2;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            if (end - p < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
                return NULL;
            if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
                return NULL;
            p += 3;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            if (end - p < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
                return NULL;
            if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
                return NULL;
            p += 4;
        }
        else
            return NULL;
    }
    return NULL;
}

/* The next byte of a validated string body's decoded UTF-8, advancing *p. */
static unsigned char
decoded(cursor *p)
{
    cursor q = *p;
    if (*q != '\\') {
        *p = q + 1;
        return *q;
    }
    switch (q[1]) {
    case 'b': *p = q + 2; return 0x08;
    case 'f': *p = q + 2; return 0x0c;
    case 'n': *p = q + 2; return 0x0a;
    case 'r': *p = q + 2; return 0x0d;
    case 't': *p = q + 2; return 0x09;
    case 'u': {
        unsigned char l = q[5];
        *p = q + 6;
        return (unsigned char)((q[4] - '0') * 16 + ((l <= '9') ? l - '0' : l - 'a' + 10));
    }
    default: *p = q + 2; return q[1]; /* \" or \\ */
    }
}

/* Whether key a (body a..a_end, without quotes) sorts strictly before key b by code point:
   their decoded UTF-8 bytes compare in the same order. */
static int
key_before(cursor a, cursor a_end, cursor b, cursor b_end)
{
    while (a < a_end && b < b_end) {
        unsigned char x = decoded(&a), y = decoded(&b);
        if (x != y)
            return x < y;
    }
    return a >= a_end && b < b_end;
}

static cursor
number(cursor p, cursor end)
{
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    cursor digits = p;
    unsigned long long n = 0;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - digits >= MAX_DIGITS)
                return NULL;
            n = n * 10 + (unsigned long long)(*p - '0');
            p++;
        }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
        return NULL; /* a float, or a leading zero */
    if (n > MAX_INT || (negative && n == 0))
        return NULL; /* out of range, or -0 (which re-encodes as 0) */
    return p;
}

static cursor
literal(cursor p, cursor end, const char *word, Py_ssize_t len)
{
    if (end - p < len || memcmp(p, word, (size_t)len) != 0)
        return NULL;
    return p + len;
}

static cursor
object(cursor p, cursor end, int depth)
{
    /* p is just past '{' */
    if (p < end && *p == '}')
        return p + 1;
    cursor last = NULL, last_end = NULL;
    for (;;) {
        if (p >= end || *p != '"')
            return NULL;
        cursor key = p + 1;
        p = string(key, end);
        if (p == NULL)
            return NULL;
        cursor key_end = p - 1;
        if (last != NULL && !key_before(last, last_end, key, key_end))
            return NULL; /* out of order, or a duplicate */
        last = key;
        last_end = key_end;
        if (p >= end || *p != ':')
            return NULL;
        p = value(p + 1, end, depth);
        if (p == NULL || p >= end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static cursor
array(cursor p, cursor end, int depth)
{
    /* p is just past '[' */
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        p = value(p, end, depth);
        if (p == NULL || p >= end)
            return NULL;
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static cursor
value(cursor p, cursor end, int depth)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        return string(p + 1, end);
    case '{':
        return depth >= MAX_DEPTH ? NULL : object(p + 1, end, depth + 1);
    case '[':
        return depth >= MAX_DEPTH ? NULL : array(p + 1, end, depth + 1);
    case 't':
        return literal(p, end, "true", 4);
    case 'f':
        return literal(p, end, "false", 5);
    case 'n':
        return literal(p, end, "null", 4);
    default:
        return number(p, end);
    }
}

static int
canonical_line(cursor p, Py_ssize_t len)
{
    cursor end = p + len;
    if (len < 2 || *p != '{')
        return 0;
    return object(p + 1, end, 1) == end;
}

static PyObject *
canonical_array(PyObject *self, PyObject *lines)
{
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "canonical_array() takes a list of bytes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lines), size = 2 + (n > 0 ? n - 1 : 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "canonical_array() takes a list of bytes");
            return NULL;
        }
        if (!canonical_line((cursor)PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line)))
            return PyLong_FromSsize_t(i);
        size += PyBytes_GET_SIZE(line);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *at = PyBytes_AS_STRING(out);
    *at++ = '[';
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (i)
            *at++ = ',';
        memcpy(at, PyBytes_AS_STRING(line), (size_t)PyBytes_GET_SIZE(line));
        at += PyBytes_GET_SIZE(line);
    }
    *at = ']';
    return out;
}

/* Lines given as a stretch of the log: `data` (whole lines, each ending in LF) and `starts`, a
   buffer of native uint64 file offsets, one per line and one past the last (starts[0] is data's own). */
typedef struct {
    Py_buffer data, starts;
    const uint64_t *at;
    Py_ssize_t count; /* lines */
} Span;

static int
span_open(Span *span, PyObject *data, PyObject *starts)
{
    if (PyObject_GetBuffer(data, &span->data, PyBUF_SIMPLE) < 0)
        return -1;
    if (PyObject_GetBuffer(starts, &span->starts, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&span->data);
        return -1;
    }
    span->at = (const uint64_t *)span->starts.buf;
    span->count = span->starts.len / 8 - 1;
    if (span->starts.len % 8 || span->count < 0
        || span->at[span->count] - span->at[0] != (uint64_t)span->data.len) {
        PyBuffer_Release(&span->data);
        PyBuffer_Release(&span->starts);
        PyErr_SetString(PyExc_ValueError, "the line starts do not describe the data");
        return -1;
    }
    return 0;
}

static void
span_close(Span *span)
{
    PyBuffer_Release(&span->data);
    PyBuffer_Release(&span->starts);
}

/* Line i: its first byte and its length without the LF. */
#define SPAN_LINE(span, i) ((cursor)(span)->data.buf + ((span)->at[i] - (span)->at[0]))
#define SPAN_LENGTH(span, i) ((Py_ssize_t)((span)->at[(i) + 1] - (span)->at[i]) - 1)

static PyObject *
line_starts(PyObject *self, PyObject *args)
{
    Py_buffer data;
    unsigned long long base;
    if (!PyArg_ParseTuple(args, "y*K:line_starts", &data, &base))
        return NULL;
    const char *p = data.buf, *end = p + data.len;
    if (data.len && end[-1] != '\n') {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "line_starts(): the data does not end with a line feed");
        return NULL;
    }
    Py_ssize_t lines = 0;
    for (const char *q = p; q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (lines + 1) * 8);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    uint64_t *at = (uint64_t *)PyBytes_AS_STRING(out);
    *at++ = base;
    for (const char *q = p; q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        *at++ = base + (uint64_t)(q + 1 - p);
    PyBuffer_Release(&data);
    return out;
}

static PyObject *
span_canonical_array(PyObject *self, PyObject *args)
{
    PyObject *data, *starts;
    Py_ssize_t first, stop;
    Span span;
    if (!PyArg_ParseTuple(args, "OOnn:span_canonical_array", &data, &starts, &first, &stop))
        return NULL;
    if (span_open(&span, data, starts) < 0)
        return NULL;
    if (first < 0 || stop > span.count || first > stop) {
        span_close(&span);
        PyErr_SetString(PyExc_IndexError, "span_canonical_array(): lines out of range");
        return NULL;
    }
    PyObject *out = NULL;
    for (Py_ssize_t i = first; i < stop; i++)
        if (!canonical_line(SPAN_LINE(&span, i), SPAN_LENGTH(&span, i))) {
            out = PyLong_FromSsize_t(i - first);
            goto done;
        }
    /* the lines are contiguous: the array is their bytes with each LF but the last read as a comma */
    Py_ssize_t size = first < stop ? (Py_ssize_t)(span.at[stop] - span.at[first]) - 1 : 0;
    out = PyBytes_FromStringAndSize(NULL, size + 2);
    if (out == NULL)
        goto done;
    char *to = PyBytes_AS_STRING(out);
    to[0] = '[';
    if (size) {
        memcpy(to + 1, SPAN_LINE(&span, first), (size_t)size);
        for (Py_ssize_t i = first; i < stop - 1; i++)
            to[1 + (span.at[i + 1] - span.at[first]) - 1] = ',';
    }
    to[size + 1] = ']';
done:
    span_close(&span);
    return out;
}

static PyObject *
span_leaf_hashes(PyObject *self, PyObject *args)
{
    PyObject *data, *starts;
    Span span;
    if (!PyArg_ParseTuple(args, "OO:span_leaf_hashes", &data, &starts))
        return NULL;
    if (span_open(&span, data, starts) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, span.count * SHA256_DIGEST_LENGTH);
    if (out != NULL) {
        unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
        static const unsigned char zero = 0x00;
        for (Py_ssize_t i = 0; i < span.count; i++) {
            SHA256_CTX ctx;
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, &zero, 1);
            SHA256_Update(&ctx, SPAN_LINE(&span, i), (size_t)SPAN_LENGTH(&span, i));
            SHA256_Final(at + i * SHA256_DIGEST_LENGTH, &ctx);
        }
    }
    span_close(&span);
    return out;
}

static PyObject *
leaf_hashes(PyObject *self, PyObject *lines)
{
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "leaf_hashes() takes a list of bytes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lines);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * SHA256_DIGEST_LENGTH);
    if (out == NULL)
        return NULL;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    static const unsigned char zero = 0x00;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyBytes_Check(line)) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "leaf_hashes() takes a list of bytes");
            return NULL;
        }
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &zero, 1);
        SHA256_Update(&ctx, PyBytes_AS_STRING(line), (size_t)PyBytes_GET_SIZE(line));
        SHA256_Final(at + i * SHA256_DIGEST_LENGTH, &ctx);
    }
    return out;
}

static PyObject *
node_hashes(PyObject *self, PyObject *args)
{
    Py_buffer level;
    Py_ssize_t skip, pairs;
    if (!PyArg_ParseTuple(args, "y*nn:node_hashes", &level, &skip, &pairs))
        return NULL;
    if (skip < 0 || pairs < 0 || skip + pairs * 64 > level.len) {
        PyBuffer_Release(&level);
        PyErr_SetString(PyExc_ValueError, "node_hashes(): the pairs run past the level's hashes");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, pairs * SHA256_DIGEST_LENGTH);
    if (out == NULL) {
        PyBuffer_Release(&level);
        return NULL;
    }
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *from = (const unsigned char *)level.buf + skip;
    static const unsigned char one = 0x01;
    for (Py_ssize_t i = 0; i < pairs; i++) {
        SHA256_CTX ctx; /* the low-level calls: SHA256() looks the digest up anew each time */
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &one, 1);
        SHA256_Update(&ctx, from + i * 64, 64);
        SHA256_Final(at + i * SHA256_DIGEST_LENGTH, &ctx);
    }
    PyBuffer_Release(&level);
    return out;
}

static PyMethodDef methods[] = {
    {"canonical_array", canonical_array, METH_O,
     "The lines joined as one JSON array if every line is a canonical entry line, else the index of the first that is not."},
    {"leaf_hashes", leaf_hashes, METH_O, "SHA-256(0x00 || line) of each line, concatenated."},
    {"node_hashes", node_hashes, METH_VARARGS,
     "SHA-256(0x01 || left || right) of `pairs` pairs of hashes from `level`, from byte `skip`."},
    {"line_starts", line_starts, METH_VARARGS,
     "The file offset of each line of `data` (read from offset `base`) and one past the last, native uint64."},
    {"span_canonical_array", span_canonical_array, METH_VARARGS,
     "canonical_array() of lines `first`..`stop - 1` of a stretch (`data`, `starts`)."},
    {"span_leaf_hashes", span_leaf_hashes, METH_VARARGS, "leaf_hashes() of every line of a stretch (`data`, `starts`)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "offboard.audit._native", "The audit verifier's hot loops in C.", -1, methods,
};

#ifndef OFFBOARD_NATIVE_SOURCE
#define OFFBOARD_NATIVE_SOURCE ""
#endif

PyMODINIT_FUNC
PyInit__native(void)
{
    init_plain();
    PyObject *m = PyModule_Create(&module);
    /* the SHA-256 of the source it was built from: a test tells a stale build from a current one */
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_SHA256", OFFBOARD_NATIVE_SOURCE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
