package dev.baton;

/**
 * Baton's native engine cannot be loaded: this jar carries no library for the platform, the
 * {@code baton.native.path} system property points at nothing, or the library fails to link.
 * The message names the platform or the path.
 *
 * <pre>{@code
 * // Use a library built locally instead of the one in the jar:
 * // java -Dbaton.native.path=/work/target/release/libbaton_jni.so ...
 * }</pre>
 */
public class NativeLibraryException extends BatonException {
    private static final long serialVersionUID = 1L;

    public NativeLibraryException(String message) {
        super(message);
    }

    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
