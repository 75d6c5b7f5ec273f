/**
 * Baton's internals: the JSON codec, duration text, the native loader. Not an API: anything
 * here may change in any release.
 */
package dev.baton.internal;
