package dev.baton.internal;

import java.util.Collection;

/**
 * "Did you mean" for a name a step asks for that is not there (a param, an input): the known
 * name closest to it, when it is close enough to be a typo.
 *
 * <pre>{@code
 * Suggest.didYouMean("dat", List.of("date", "limit")); // " (did you mean `date`?)"
 * }</pre>
 */
public final class Suggest {

    private Suggest() {}

    /** {@code " (did you mean `x`?)"}, or {@code ""} when no known name is close. */
    public static String didYouMean(String name, Collection<String> known) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String candidate : known) {
            int d = distance(name, candidate);
            if (d < bestDistance) {
                best = candidate;
                bestDistance = d;
            }
        }
        int allowed = Math.max(1, name.length() / 3);
        return best != null && bestDistance <= allowed ? " (did you mean `" + best + "`?)" : "";
    }

    /** Levenshtein distance. */
    private static int distance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                current[j] = Math.min(Math.min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
