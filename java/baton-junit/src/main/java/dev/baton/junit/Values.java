package dev.baton.junit;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Values as the engine keeps them (JSON: numbers, strings, booleans, lists, maps), compared
 * and printed the way a test means them: {@code 0} equals a stored {@code 0L}, {@code 1.5f}
 * a stored {@code 1.5d}.
 */
final class Values {

    private Values() {}

    /** True if {@code expected} and {@code actual} are the same JSON value. */
    static boolean same(Object expected, Object actual) {
        if (expected instanceof Number e && actual instanceof Number a) {
            return decimal(e).compareTo(decimal(a)) == 0;
        }
        if (expected instanceof CharSequence || expected instanceof Character) {
            return actual instanceof CharSequence && expected.toString().contentEquals((CharSequence) actual);
        }
        if (expected instanceof Map<?, ?> e && actual instanceof Map<?, ?> a) {
            if (e.size() != a.size()) {
                return false;
            }
            for (Map.Entry<?, ?> entry : e.entrySet()) {
                if (!a.containsKey(entry.getKey()) || !same(entry.getValue(), a.get(entry.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        if (expected instanceof Iterable<?> e && actual instanceof List<?> a) {
            Iterator<?> left = e.iterator();
            Iterator<?> right = a.iterator();
            while (left.hasNext() && right.hasNext()) {
                if (!same(left.next(), right.next())) {
                    return false;
                }
            }
            return !left.hasNext() && !right.hasNext();
        }
        return expected == null ? actual == null : expected.equals(actual);
    }

    private static BigDecimal decimal(Number n) {
        if (n instanceof BigDecimal d) {
            return d;
        }
        if (n instanceof BigInteger i) {
            return new BigDecimal(i);
        }
        if (n instanceof Double || n instanceof Float) {
            // Through the decimal text, so that 1.1f reads as 1.1, as JSON keeps it.
            return new BigDecimal(n.toString());
        }
        return BigDecimal.valueOf(n.longValue());
    }

    /** A value as {@code baton show} prints it: text bare, anything else as JSON. */
    static String plain(Object value) {
        return value instanceof String s ? s : json(value);
    }

    static String json(Object value) {
        StringBuilder out = new StringBuilder();
        writeJson(out, value);
        return out.toString();
    }

    private static void writeJson(StringBuilder out, Object value) {
        if (value instanceof CharSequence || value instanceof Character) {
            out.append('"');
            value.toString().chars().forEach(c -> {
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\t' -> out.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            out.append(String.format("\\u%04x", c));
                        } else {
                            out.append((char) c);
                        }
                    }
                }
            });
            out.append('"');
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            String separator = "";
            for (Map.Entry<?, ?> e : map.entrySet()) {
                out.append(separator);
                writeJson(out, String.valueOf(e.getKey()));
                out.append(":");
                writeJson(out, e.getValue());
                separator = ",";
            }
            out.append('}');
        } else if (value instanceof Iterable<?> items) {
            out.append('[');
            String separator = "";
            for (Object item : items) {
                out.append(separator);
                writeJson(out, item);
                separator = ",";
            }
            out.append(']');
        } else {
            out.append(value);
        }
    }
}
