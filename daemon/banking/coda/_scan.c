/* Optional speed-up of groups.GROUP: one 2.1 [2.2] [2.3] group cut into converted fields.
 *
 * group(text, pos) matches exactly what GROUP.match(text, pos) matches (same records, same
 * characters, same line ends) and returns the fields read_groups derives from the regex groups,
 * already converted, or None where the regex would not match. Everything it does not match goes
 * to the Python line-by-line parser as before, so errors and odd records are never handled here.
 * groups.py falls back to the regex when this module is not built; a test compares both on
 * random and mutated input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define RECORD 128          /* characters per record, then its LF */
#define LINE (RECORD + 1)
#define FIELDS 21          /* the length of scan.Fields */

static PyObject *decimal_type;  /* decimal.Decimal */

/* The record at text[at] is RECORD characters without LF, then LF (regex: ".{…}\n"). */
static int
whole_record(int kind, const void *data, Py_ssize_t length, Py_ssize_t at)
{
    if (at < 0 || at > length - LINE)  /* no overflow, whatever the position */
        return 0;
    if (kind == PyUnicode_1BYTE_KIND)  /* most blocks: one memchr */
        return memchr((const Py_UCS1 *)data + at, '\n', RECORD) == NULL && ((const Py_UCS1 *)data)[at + RECORD] == '\n';
    for (Py_ssize_t i = at; i < at + RECORD; i++) {
        if (PyUnicode_READ(kind, data, i) == '\n')
            return 0;
    }
    return PyUnicode_READ(kind, data, at + RECORD) == '\n';
}

static int
digits(int kind, const void *data, Py_ssize_t at, Py_ssize_t count)
{
    for (Py_ssize_t i = at; i < at + count; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < '0' || c > '9')
            return 0;
    }
    return 1;
}

static long
number(int kind, const void *data, Py_ssize_t at, Py_ssize_t count)
{
    long value = 0;
    for (Py_ssize_t i = at; i < at + count; i++)
        value = value * 10 + (long)(PyUnicode_READ(kind, data, i) - '0');
    return value;
}

static int
sign(int kind, const void *data, Py_ssize_t at)
{
    Py_UCS4 c = PyUnicode_READ(kind, data, at);
    return c == '0' || c == '1';
}

/* text[at:at+count].strip(), as str.strip() (Unicode whitespace). */
static PyObject *
stripped(PyObject *text, int kind, const void *data, Py_ssize_t at, Py_ssize_t count)
{
    Py_ssize_t start = at, end = at + count;
    while (start < end && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, start)))
        start++;
    while (end > start && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, end - 1)))
        end--;
    return PyUnicode_Substring(text, start, end);
}

/* Decimal of 15 digits with 3 implied decimals, negative for a debit that is not zero
 * (as read_groups: -Decimal("…E-3") of a zero is a positive zero). */
static PyObject *
amount(int kind, const void *data, Py_ssize_t at, int debit, int *nonzero)
{
    char buffer[1 + 15 + 3 + 1];
    char *out = buffer;
    *nonzero = 0;
    for (Py_ssize_t i = at; i < at + 15; i++) {
        if (PyUnicode_READ(kind, data, i) != '0')
            *nonzero = 1;
    }
    if (debit && *nonzero)
        *out++ = '-';
    for (Py_ssize_t i = at; i < at + 15; i++)
        *out++ = (char)PyUnicode_READ(kind, data, i);
    memcpy(out, "E-3", 3);
    out += 3;
    PyObject *literal = PyUnicode_FromStringAndSize(buffer, out - buffer);
    if (literal == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(decimal_type, literal);
    Py_DECREF(literal);
    return value;
}

/* A 2.2 or 2.3 (``article``) at ``at`` continuing the 2.1 at ``first`` (same sequence and detail). */
static int
continues(int kind, const void *data, Py_ssize_t length, Py_ssize_t at, Py_ssize_t first, Py_UCS4 article)
{
    if (at < 0 || at > length - LINE || PyUnicode_READ(kind, data, at) != '2' || PyUnicode_READ(kind, data, at + 1) != article)
        return 0;
    for (Py_ssize_t i = 2; i < 10; i++) {
        if (PyUnicode_READ(kind, data, at + i) != PyUnicode_READ(kind, data, first + i))
            return 0;
    }
    return whole_record(kind, data, length, at);
}

/* The communication: zones of 2.1 (53), 2.2 (53) and 2.3 (43) put together, blank for a record
 * that is missing (at < 0). Built in place, as the narrowest string that holds it (CPython's
 * canonical form, which equality and str.isascii() rely on). */
static PyObject *
communication(PyObject *text, int kind, const void *data, Py_ssize_t at21, Py_ssize_t at22, Py_ssize_t at23)
{
    const Py_ssize_t starts[3] = {at21 + 62, at22 >= 0 ? at22 + 10 : -1, at23 >= 0 ? at23 + 82 : -1};
    const Py_ssize_t sizes[3] = {53, 53, 43};
    if (PyUnicode_IS_ASCII(text)) {  /* most blocks: ASCII in, ASCII out, copied as bytes */
        PyObject *result = PyUnicode_New(53 + 53 + 43, 127);
        if (result == NULL)
            return NULL;
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(result);
        for (int zone = 0; zone < 3; zone++) {
            if (starts[zone] >= 0)
                memcpy(out, (const Py_UCS1 *)data + starts[zone], sizes[zone]);
            else
                memset(out, ' ', sizes[zone]);
            out += sizes[zone];
        }
        return result;
    }
    Py_UCS4 widest = ' ';
    for (int zone = 0; zone < 3; zone++) {
        for (Py_ssize_t i = 0; starts[zone] >= 0 && i < sizes[zone]; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, starts[zone] + i);
            if (c > widest)
                widest = c;
        }
    }
    PyObject *result = PyUnicode_New(53 + 53 + 43, widest);
    if (result == NULL)
        return NULL;
    int out_kind = PyUnicode_KIND(result);
    void *out = PyUnicode_DATA(result);
    Py_ssize_t to = 0;
    for (int zone = 0; zone < 3; zone++) {
        for (Py_ssize_t i = 0; i < sizes[zone]; i++, to++)
            PyUnicode_WRITE(out_kind, out, to, starts[zone] >= 0 ? PyUnicode_READ(kind, data, starts[zone] + i) : ' ');
    }
    return result;
}

#define SLICE(at, count) PyUnicode_Substring(text, (at), (at) + (count))

PyDoc_STRVAR(group_doc,
"group(text, pos) -> tuple | None\n\n"
"The 2.1 [2.2] [2.3] group at ``pos`` of ``text`` (lines ending in LF) as (end, lines, sequence,\n"
"detail, bank_reference, amount, debit, value_date, code, structured, communication, entry_date,\n"
"paper_number, globalisation, end_to_end_id, bic, r_type, iso_reason, category_purpose, purpose,\n"
"zone23), or None where scan.GROUP does not match (see scan.Fields).");

static PyObject *
group(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "group(text: str, pos: int)");
        return NULL;
    }
    PyObject *text = args[0];
    Py_ssize_t p = PyLong_AsSsize_t(args[1]);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (p < 0 || !whole_record(kind, data, length, p)
            || PyUnicode_READ(kind, data, p) != '2' || PyUnicode_READ(kind, data, p + 1) != '1'
            || !digits(kind, data, p + 2, 8) || !sign(kind, data, p + 31) || !digits(kind, data, p + 32, 15)
            || !sign(kind, data, p + 61))
        Py_RETURN_NONE;
    Py_ssize_t end = p + LINE, at22 = -1, at23 = -1;
    long lines = 1;
    if (continues(kind, data, length, end, p, '2')) {
        at22 = end;
        end += LINE;
        lines++;
    }
    if (continues(kind, data, length, end, p, '3')) {
        at23 = end;
        end += LINE;
        lines++;
    }
    int nonzero;
    Py_UCS4 globalisation = PyUnicode_READ(kind, data, p + 124);
    PyObject *result = PyTuple_New(FIELDS);
    if (result == NULL)
        return NULL;
    PyObject *items[FIELDS];
    items[0] = PyLong_FromSsize_t(end);
    items[1] = PyLong_FromLong(lines);
    items[2] = PyLong_FromLong(number(kind, data, p + 2, 4));
    items[3] = PyLong_FromLong(number(kind, data, p + 6, 4));
    items[4] = stripped(text, kind, data, p + 10, 21);
    items[5] = amount(kind, data, p + 32, PyUnicode_READ(kind, data, p + 31) == '1', &nonzero);
    items[6] = PyBool_FromLong(PyUnicode_READ(kind, data, p + 31) == '1' && nonzero);
    items[7] = SLICE(p + 47, 6);
    items[8] = SLICE(p + 53, 8);
    items[9] = SLICE(p + 61, 1);
    items[10] = communication(text, kind, data, p, at22, at23);
    items[11] = SLICE(p + 115, 6);
    items[12] = SLICE(p + 121, 3);
    items[13] = PyLong_FromLong(globalisation >= '0' && globalisation <= '9' ? (long)(globalisation - '0') : 0);
    if (at22 >= 0) {
        PyObject *end_to_end = stripped(text, kind, data, at22 + 63, 35);
        if (end_to_end != NULL && (PyUnicode_GET_LENGTH(end_to_end) == 0
                                   || PyUnicode_CompareWithASCIIString(end_to_end, "NOTPROVIDED") == 0)) {
            Py_SETREF(end_to_end, Py_NewRef(Py_None));
        }
        items[14] = end_to_end;
        PyObject *bic = stripped(text, kind, data, at22 + 98, 11);
        if (bic != NULL && PyUnicode_GET_LENGTH(bic) == 0)
            Py_SETREF(bic, Py_NewRef(Py_None));
        items[15] = bic;
        items[16] = stripped(text, kind, data, at22 + 112, 1);
        items[17] = stripped(text, kind, data, at22 + 113, 4);
        items[18] = stripped(text, kind, data, at22 + 117, 4);
        items[19] = stripped(text, kind, data, at22 + 121, 4);
    }
    else {
        items[14] = Py_NewRef(Py_None);
        items[15] = Py_NewRef(Py_None);
        for (int i = 16; i < 20; i++)
            items[i] = PyUnicode_New(0, 0);  /* the empty string singleton */
    }
    items[20] = at23 >= 0 ? SLICE(at23 + 10, 72) : Py_NewRef(Py_None);
    int failed = 0;
    for (int i = 0; i < FIELDS; i++) {
        if (items[i] == NULL)
            failed = 1;
        PyTuple_SET_ITEM(result, i, items[i]);  /* NULL items are left NULL: the tuple's dealloc skips them */
    }
    if (failed) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"group", (PyCFunction)(void (*)(void))group, METH_FASTCALL, group_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "daemon.banking.coda._scan",
    .m_doc = "Optional C speed-up of the CODA group regex (see scan.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL)
        return NULL;
    decimal_type = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (decimal_type == NULL)
        return NULL;
    return PyModule_Create(&module);
}
