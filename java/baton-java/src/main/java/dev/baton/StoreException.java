package dev.baton;

/**
 * The engine's durable store cannot be opened, read or written: a missing directory, a store
 * locked by another process, a full disk.
 *
 * <pre>{@code
 * } catch (StoreException e) {
 *     // another process holds the store, or the disk is full: the message says which
 * }
 * }</pre>
 */
public class StoreException extends BatonException {
    private static final long serialVersionUID = 1L;

    public StoreException(String message) {
        super(message);
    }

    public StoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
