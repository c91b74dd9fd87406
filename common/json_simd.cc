// json_simd.cc: a JSON text read with simdjson On-Demand and told to yajl's
// callbacks (see json_simd.h for the contract). No exceptions: every
// simdjson result is checked, and anything unexpected declines, which sends
// the caller back to yajl.
#include "common/json_simd.h"

#include <simdjson.h>
#include <stdlib.h>
#include <string.h>

#include <utility>

using namespace simdjson;

namespace {

// Longer texts go to yajl: the parser keeps buffers sized to the longest
// text it has read (about 8 bytes per byte of input), and that stays
// small this way. Notifications are a few KiB.
constexpr size_t S_MAX_LEN = 256 * 1024;

struct s_reader {
    ondemand::parser parser;
    char *buf = nullptr;    // the text, copied with simdjson's padding after it
    size_t cap = 0;
    ~s_reader() { free(buf); }
};

thread_local s_reader t_reader;

struct s_walk {
    const yajl_callbacks *cb;
    void *ctx;
};

inline bool
s_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// A scalar's token runs to the next structural character and may carry the
// whitespace before it.
inline std::string_view
s_trim(std::string_view t)
{
    size_t n = t.size();
    while (n > 0 && s_space(t[n - 1]))
        n--;
    return t.substr(0, n);
}

inline bool
s_digit(char c)
{
    return c >= '0' && c <= '9';
}

// The JSON number grammar, which is also exactly what yajl's lexer takes:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  On-Demand does not check
// a number it is not asked to convert.
bool
s_number_ok(std::string_view t)
{
    size_t i = 0, n = t.size();
    if (i < n && t[i] == '-')
        i++;
    if (i >= n || !s_digit(t[i]))
        return false;
    if (t[i++] != '0')
        while (i < n && s_digit(t[i]))
            i++;
    if (i < n && t[i] == '.') {
        if (++i >= n || !s_digit(t[i]))
            return false;
        while (i < n && s_digit(t[i]))
            i++;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        if (++i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= n || !s_digit(t[i]))
            return false;
        while (i < n && s_digit(t[i]))
            i++;
    }
    return i == n;
}

// yajl decodes a \u escape of a UTF-16 surrogate its own way (a high one
// followed by any \u escape makes one code point, a lone high one a '?')
// and simdjson differently: such texts are left to yajl. The test is
// coarse (an escaped backslash before "ud8" also counts), which only
// costs a second reading of a rare text.
bool
s_has_surrogate_escape(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while ((p = static_cast<const char *>(memchr(p, '\\', static_cast<size_t>(end - p))))) {
        if (end - p >= 4 && p[1] == 'u' && (p[2] == 'd' || p[2] == 'D') &&
            strchr("89abcdefABCDEF", p[3]) && p[3] != '\0')
            return true;
        p++;
    }
    return false;
}

sl_simd_status_t s_value(ondemand::value &v, const s_walk &w);

sl_simd_status_t
s_object(ondemand::object &o, const s_walk &w)
{
    if (!w.cb->yajl_start_map(w.ctx))
        return SL_SIMD_STOPPED;
    for (auto field : o) {
        ondemand::field f;
        std::string_view key;
        if (std::move(field).get(f) || f.unescaped_key().get(key))
            return SL_SIMD_DECLINED;
        if (!w.cb->yajl_map_key(w.ctx, reinterpret_cast<const unsigned char *>(key.data()),
                                key.size()))
            return SL_SIMD_STOPPED;
        sl_simd_status_t st = s_value(f.value(), w);
        if (st != SL_SIMD_DONE)
            return st;
    }
    return w.cb->yajl_end_map(w.ctx) ? SL_SIMD_DONE : SL_SIMD_STOPPED;
}

sl_simd_status_t
s_array(ondemand::array &a, const s_walk &w)
{
    if (!w.cb->yajl_start_array(w.ctx))
        return SL_SIMD_STOPPED;
    for (auto elem : a) {
        ondemand::value v;
        if (std::move(elem).get(v))
            return SL_SIMD_DECLINED;
        sl_simd_status_t st = s_value(v, w);
        if (st != SL_SIMD_DONE)
            return st;
    }
    return w.cb->yajl_end_array(w.ctx) ? SL_SIMD_DONE : SL_SIMD_STOPPED;
}

sl_simd_status_t
s_value(ondemand::value &v, const s_walk &w)
{
    ondemand::json_type type;
    if (v.type().get(type))
        return SL_SIMD_DECLINED;
    int ok;
    switch (type) {
    case ondemand::json_type::object: {
        ondemand::object o;
        if (v.get_object().get(o))
            return SL_SIMD_DECLINED;
        return s_object(o, w);
    }
    case ondemand::json_type::array: {
        ondemand::array a;
        if (v.get_array().get(a))
            return SL_SIMD_DECLINED;
        return s_array(a, w);
    }
    case ondemand::json_type::string: {
        std::string_view s;
        if (v.get_string().get(s))
            return SL_SIMD_DECLINED;
        ok = w.cb->yajl_string(w.ctx, reinterpret_cast<const unsigned char *>(s.data()),
                               s.size());
        break;
    }
    case ondemand::json_type::number: {
        std::string_view t = s_trim(v.raw_json_token());
        if (!s_number_ok(t))
            return SL_SIMD_DECLINED;
        ok = w.cb->yajl_number(w.ctx, t.data(), t.size());
        break;
    }
    case ondemand::json_type::boolean: {
        // type() looks at the first byte only: the whole token is checked
        std::string_view t = s_trim(v.raw_json_token());
        if (t != "true" && t != "false")
            return SL_SIMD_DECLINED;
        ok = w.cb->yajl_boolean(w.ctx, t[0] == 't');
        break;
    }
    case ondemand::json_type::null: {
        if (s_trim(v.raw_json_token()) != "null")
            return SL_SIMD_DECLINED;
        ok = w.cb->yajl_null(w.ctx);
        break;
    }
    default:
        return SL_SIMD_DECLINED;
    }
    return ok ? SL_SIMD_DONE : SL_SIMD_STOPPED;
}

}  // namespace

extern "C" sl_simd_status_t
sl_json_simd_walk(const char *text, size_t len, int plain, const yajl_callbacks *cb, void *ctx)
{
    if (!text || len == 0 || len > S_MAX_LEN)
        return SL_SIMD_DECLINED;
    // The root must start the text (after JSON whitespace) as { or [: a
    // scalar root, a byte order mark or yajl's extra whitespace (\v, \f)
    // are yajl's to judge.
    size_t i = 0;
    while (i < len && s_space(text[i]))
        i++;
    if (i == len || (text[i] != '{' && text[i] != '['))
        return SL_SIMD_DECLINED;
    if (!plain && s_has_surrogate_escape(text, len))
        return SL_SIMD_DECLINED;
    s_reader &r = t_reader;
    if (r.cap < len + SIMDJSON_PADDING) {
        size_t cap = len + SIMDJSON_PADDING < 4096 ? 4096 : len + SIMDJSON_PADDING;
        char *b = static_cast<char *>(realloc(r.buf, cap));
        if (!b)
            return SL_SIMD_DECLINED;
        r.buf = b;
        r.cap = cap;
    }
    memcpy(r.buf, text, len);
    memset(r.buf + len, ' ', SIMDJSON_PADDING);
    ondemand::document doc;
    if (r.parser.iterate(r.buf, len, r.cap).get(doc))
        return SL_SIMD_DECLINED;
    s_walk w = { cb, ctx };
    sl_simd_status_t st;
    if (text[i] == '{') {
        ondemand::object o;
        if (doc.get_object().get(o))
            return SL_SIMD_DECLINED;
        st = s_object(o, w);
    } else {
        ondemand::array a;
        if (doc.get_array().get(a))
            return SL_SIMD_DECLINED;
        st = s_array(a, w);
    }
    if (st != SL_SIMD_DONE)
        return st;
    // Nothing may follow the root: the iterator must stand at the end.
    const char *at;
    if (doc.current_location().get(at) != OUT_OF_BOUNDS)
        return SL_SIMD_DECLINED;
    return SL_SIMD_DONE;
}

extern "C" const char *
sl_json_simd_kernel(void)
{
    return get_active_implementation()->name().data();
}
