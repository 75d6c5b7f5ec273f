#!/usr/bin/env python3
"""Medians of a JMH JSON result (java -jar benchmarks.jar -rf json -rff jmh.json), and the
round trip of a Java step through JNI: per step, the median run of 10,000 Java no-op steps
minus the median run of 10,000 steps that stay in the engine, on the same store.

    python3 java/baton-bench/medians.py jmh.json
"""
import json
import sys

STEPS = 10_000


def main(path):
    medians = {}
    for result in json.load(open(path)):
        name = result["benchmark"].rsplit(".", 1)[-1]
        store = result.get("params", {}).get("store", "-")
        metric = result["primaryMetric"]
        p50 = metric["scorePercentiles"]["50.0"]
        p99 = metric["scorePercentiles"].get("99.0", p50)
        medians[(name, store)] = (p50, metric["scoreUnit"])
        print(f"{name:24} {store:7} median {p50:10.3f} {metric['scoreUnit']:6} p99 {p99:10.3f}")
    for store in sorted({s for (_, s) in medians}):
        java = medians.get(("tenThousandJavaSteps", store))
        native = medians.get(("tenThousandNativeSteps", store))
        if java and native and java[1] == native[1] == "ms/op":
            per_step = (java[0] - native[0]) * 1000 / STEPS
            print(f"round trip through JNI ({store}): {per_step:.2f} us per step "
                  f"({java[0] * 1000 / STEPS:.2f} us Java end to end, {native[0] * 1000 / STEPS:.2f} us in the engine)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "jmh.json")
