package dev.baton;

/**
 * Where a step of a run is. {@link #SUCCEEDED}, {@link #FAILED}, {@link #SKIPPED},
 * {@link #STOPPED} and {@link #KILLED} are final.
 *
 * <pre>{@code
 * if (result.step("load").status() == StepStatus.WAITING) {
 *     System.out.println(result.step("load").waitingFor().orElse(""));
 * }
 * }</pre>
 */
public enum StepStatus {
    /** Its upstream steps have not all finished. */
    PENDING,
    /** Ready to run, waiting for a free slot. */
    READY,
    RUNNING,
    /** Started, waiting for something named by {@link StepResult#waitingFor()}. */
    WAITING,
    SUCCEEDED,
    /** Failed after its last attempt. */
    FAILED,
    /** An attempt failed; the next one is due. */
    RETRYING,
    /** Not run: an upstream step failed, or the run ended first. */
    SKIPPED,
    STOPPED,
    KILLED;

    /** True for a status a step never leaves. */
    public boolean isFinal() {
        return this == SUCCEEDED || this == FAILED || this == SKIPPED || this == STOPPED || this == KILLED;
    }
}
