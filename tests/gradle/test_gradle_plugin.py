#!/usr/bin/env python3
"""End-to-end tests of the Gradle plugin `dev.baton`: real Gradle builds of copies of
examples/gradle-build.

    python3 tests/gradle/test_gradle_plugin.py [--baton target/release/baton] [--keep] [-v]

Needs `gradle` on the PATH (Debian's 4.4.1 is enough) and the plugin in the local Maven
repository (`mvn -f java/pom.xml install -DskipTests`; `make test-gradle` does both).

Every build runs offline in one Gradle daemon of a fresh GRADLE_USER_HOME, stopped at the
end (`gradle --stop`). Each test works on its own copy of the example, and some add
workflows or classes to it. The daemon extracts the native library to a directory of the
test, so that the tests can count the class loaders that loaded it. Python 3 standard
library only; closes with a line `N passed, N failed`.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "gradle-build")
BUILD_TIMEOUT = 300  # seconds for one Gradle build

# Set by main().
BATON = None
KEEP = False


class GradlePluginTest(unittest.TestCase):
    work = None   # the temporary directory of the whole run
    env = None    # the environment of every gradle command

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="baton-gradle-test-")
        home = os.path.join(cls.work, "gradle-home")
        cls.native = os.path.join(cls.work, "native")
        os.makedirs(home)
        os.makedirs(cls.native)
        with open(os.path.join(home, "gradle.properties"), "w") as f:
            f.write("org.gradle.daemon=true\n")
            f.write(f"org.gradle.jvmargs=-Xmx512m -Dbaton.native.tmpdir={cls.native}\n")
        cls.env = dict(os.environ, GRADLE_USER_HOME=home)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["gradle", "--stop"], env=cls.env, capture_output=True, timeout=BUILD_TIMEOUT)
        if KEEP:
            print(f"\nkept {cls.work}", file=sys.stderr)
        else:
            shutil.rmtree(cls.work, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------

    def project(self, name):
        """A fresh copy of the example build."""
        path = os.path.join(self.work, name)
        shutil.copytree(EXAMPLE, path, ignore=shutil.ignore_patterns("build", ".gradle"))
        return path

    def gradle(self, project, *args, ok=True):
        """Runs a build in `project`; returns its output (stdout and stderr)."""
        done = subprocess.run(["gradle", "--offline", "--console=plain", "--stacktrace", *args],
                              cwd=project, env=self.env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        output = done.stdout + done.stderr
        if ok and done.returncode != 0:
            self.fail(f"gradle {' '.join(args)} failed ({done.returncode}):\n{output}")
        if not ok and done.returncode == 0:
            self.fail(f"gradle {' '.join(args)} succeeded, expected a failure:\n{output}")
        return output

    def add_workflow(self, project, name, text=None, **spec):
        """Writes src/workflows/NAME.yaml (if `text`) and declares it in build.gradle."""
        if text is not None:
            with open(os.path.join(project, "src", "workflows", name + ".yaml"), "w") as f:
                f.write(textwrap.dedent(text))
            spec.setdefault("file", f"file('src/workflows/{name}.yaml')")
        lines = "".join(f"        {k} = {v}\n" for k, v in spec.items())
        with open(os.path.join(project, "build.gradle"), "a") as f:
            f.write(f"baton {{\n    workflow('{name}') {{\n{lines}    }}\n}}\n")

    def native_copies(self):
        """Copies of the native library loaded by the daemon. Each class loader extracts its
        own to self.native and unlinks it once loaded, so they are counted in the memory maps
        of the processes here, not in the directory."""
        loaded = set()
        for maps in glob.glob("/proc/[0-9]*/maps"):
            try:
                with open(maps) as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for line in lines:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith(os.path.join(self.native, "libbaton_jni-")):
                    loaded.add(fields[5].replace(" (deleted)", ""))
        return len(loaded)

    # --- tests -----------------------------------------------------------------------------

    def test_yaml_workflow_runs_with_params_and_overrides(self):
        p = self.project("yaml")
        out = self.gradle(p, "batonRunEtl")
        self.assertIn("step `extract` succeeded", out)
        self.assertIn(", outputs {rows=42}", out)
        self.assertRegex(out, r"run \w+ of `etl` succeeded")
        with open(os.path.join(p, "build", "etl", "2026-11-24.csv")) as f:
            self.assertEqual(f.read(), "2026-11-24,42\n")

        self.gradle(p, "batonRunEtl", "-Pbaton.param.date=2026-11-25")
        with open(os.path.join(p, "build", "etl", "2026-11-25.csv")) as f:
            self.assertEqual(f.read(), "2026-11-25,42\n")

        out = self.gradle(p, "batonRunEtl", "-Pbaton.param.dat=2026-11-25", ok=False)
        self.assertIn("dat", out)
        self.assertIn("did you mean `date`?", out)

    def test_java_workflow_runs_its_java_steps(self):
        p = self.project("java")
        out = self.gradle(p, "batonRunReport", "-Pbaton.param.title=Monthly report")
        self.assertIn(":compileJava", out)   # the provider's classes are built first
        self.assertIn("step `count` succeeded", out)
        self.assertIn(", outputs {words=7}", out)
        self.assertIn(", outputs {summary=Monthly report: 7 words}", out)
        self.assertIn("step `print` succeeded", out)

    def test_failed_run_fails_the_build_naming_step_error_and_inspect_command(self):
        p = self.project("failing")
        self.add_workflow(p, "nightly", """\
            id: nightly
            steps:
              - id: extract
                type: shell
                command: sleep 1.5; echo extracted    # longer than the plugin's progress interval
              - id: load
                type: shell
                command: echo "warehouse unreachable" >&2; exit 3
                depends_on: [extract]
              - id: report
                type: noop
                depends_on: [load]
            """)
        out = self.gradle(p, "batonRunNightly", ok=False)
        self.assertRegex(out, r"baton: run \w+ of `nightly` failed\n\s*step `load` failed: command exited with code 3\n")
        self.assertRegex(out, r"step `extract` succeeded in 1\.\ds")
        self.assertIn("warehouse unreachable", out)             # the tail of what it printed
        inspect = re.search(r"Inspect it with: baton --store (\S+) show (\w+)", out)
        self.assertIsNotNone(inspect, out)
        self.assertEqual(inspect.group(1), os.path.join(p, "build", "baton"))
        if BATON:
            shown = subprocess.run([BATON, "--store", inspect.group(1), "show", inspect.group(2)],
                                   capture_output=True, text=True, timeout=60)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertRegex(shown.stdout, r"load\s.*FAILED")

    def test_validate_is_up_to_date_until_a_workflow_changes(self):
        p = self.project("uptodate")
        out = self.gradle(p, "batonValidate")
        self.assertRegex(out, r":batonValidate\n")
        with open(os.path.join(p, "build", "reports", "baton", "validation.txt")) as f:
            self.assertEqual(f.read(), "etl: valid (src/workflows/etl.yaml, 3 steps)\n"
                                       "report: valid (example.Workflows#report, 3 steps)\n")
        self.assertIn(":batonValidate UP-TO-DATE", self.gradle(p, "batonValidate"))

        with open(os.path.join(p, "src", "workflows", "etl.yaml"), "a") as f:
            f.write("  - id: archive\n    type: noop\n    depends_on: [load]\n")
        out = self.gradle(p, "batonValidate")
        self.assertRegex(out, r":batonValidate\n")
        self.assertIn(":batonValidate UP-TO-DATE", self.gradle(p, "batonValidate"))

        # The provider's classes are inputs too.
        java = os.path.join(p, "src", "main", "java", "example", "Workflows.java")
        with open(java) as f:
            code = f.read()
        with open(java, "w") as f:
            f.write(code.replace('"Weekly report"', '"Daily report"'))
        self.assertRegex(self.gradle(p, "batonValidate"), r":batonValidate\n")

    def test_check_fails_listing_every_problem(self):
        p = self.project("invalid")
        self.add_workflow(p, "broken", """\
            id: broken
            params: { date: "2026-11-24" }
            steps:
              - id: extract
                type: shel
                command: echo ${dat}
              - id: load
                type: noop
                depends_on: [extrat]
            """)
        self.add_workflow(p, "typo", """\
            id: typo
            steps:
              - id: a
                typ: noop
            """)
        self.add_workflow(p, "missing", file="file('src/workflows/nowhere.yaml')")
        self.add_workflow(p, "renamed", file="file('src/workflows/etl.yaml')")   # valid: the id `etl` is its own
        self.add_workflow(p, "shape", provider="'example.Workflows.report'")
        self.add_workflow(p, "instance", provider="'example.Bad#instance'", classpath="sourceSets.main.runtimeClasspath")
        self.add_workflow(p, "text", provider="'example.Bad#text'", classpath="sourceSets.main.runtimeClasspath")
        self.add_workflow(p, "nothing", provider="'example.Nowhere#report'", classpath="sourceSets.main.runtimeClasspath")
        with open(os.path.join(p, "src", "main", "java", "example", "Bad.java"), "w") as f:
            f.write(textwrap.dedent("""\
                package example;
                public class Bad {
                    public dev.baton.Workflow instance() { return null; }
                    public static String text() { return "not a workflow"; }
                }
                """))
        out = self.gradle(p, "check", ok=False)
        expected = [
            "Baton found 9 problems in the workflows of root project",
            # The core reads the file, so every problem has its line and column.
            "src/workflows/broken.yaml:5:5: step `extract`: type: unknown step type `shel` (did you mean `shell`?)",
            "src/workflows/broken.yaml:6:5: step `extract`: command: column 8: `dat` is neither a parameter nor a step (did you mean `date`?)",
            "src/workflows/broken.yaml:9:18: step `load`: depends_on.0: unknown step `extrat` (did you mean `extract`?)",
            "src/workflows/typo.yaml:4:5: step `a`: typ: unknown field `typ`",
            "baton workflow 'missing': file " + os.path.join(p, "src", "workflows", "nowhere.yaml") + " does not exist",
            "baton workflow 'shape': provider `example.Workflows.report` is not `Class#method`",
            "baton workflow 'instance': example.Bad#instance must be static",
            "baton workflow 'text': example.Bad#text returns java.lang.String, not dev.baton.Workflow",
            "baton workflow 'nothing': class example.Nowhere is not on its classpath",
        ]
        for line in expected:
            self.assertIn(line, out)
        self.assertNotIn("baton workflow 'etl'", out)
        self.assertNotIn("baton workflow 'renamed'", out)

    def test_gradle_name_names_the_task_and_the_workflow_keeps_its_id(self):
        p = self.project("names")
        etl = os.path.join(p, "src", "workflows", "etl.yaml")
        with open(etl) as f:
            text = f.read()
        self.assertIn("\nid: etl\n", text)
        with open(etl, "w") as f:
            f.write(text.replace("\nid: etl\n", "\nid: nightly-etl\n"))
        # Another name for the same file, one that is no workflow id.
        self.add_workflow(p, "etl backfill", file="file('src/workflows/etl.yaml')",
                          params='[date: "2026-11-01", out: "$buildDir/etl"]')

        out = self.gradle(p, "-q", "tasks")
        self.assertIn("batonRunEtl - Runs the Baton workflow 'nightly-etl' (baton workflow 'etl') to its end.", out)
        self.assertIn("batonRunEtlBackfill - Runs the Baton workflow 'nightly-etl' (baton workflow 'etl backfill') to its end.", out)
        self.assertIn("batonRunReport - Runs baton workflow 'report' (example.Workflows#report) to its end.", out)

        self.gradle(p, "batonValidate")
        with open(os.path.join(p, "build", "reports", "baton", "validation.txt")) as f:
            self.assertEqual(f.read(), "etl: valid (id `nightly-etl`, src/workflows/etl.yaml, 3 steps)\n"
                                       "etl backfill: valid (id `nightly-etl`, src/workflows/etl.yaml, 3 steps)\n"
                                       "report: valid (example.Workflows#report, 3 steps)\n")

        out = self.gradle(p, "batonRunEtl", "batonRunEtlBackfill", "batonRunReport")
        self.assertEqual(len(re.findall(r"run \w+ of `nightly-etl` succeeded", out)), 2, out)
        self.assertRegex(out, r"run \w+ of `report` succeeded")
        for date in ("2026-11-24", "2026-11-01"):
            self.assertTrue(os.path.isfile(os.path.join(p, "build", "etl", date + ".csv")), date)
        if BATON:
            listed = subprocess.run([BATON, "--store", os.path.join(p, "build", "baton"), "runs", "--json"],
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(listed.returncode, 0, listed.stderr)
            runs = json.loads(listed.stdout)
            self.assertEqual(sorted(r["workflow_id"] for r in runs), ["nightly-etl", "nightly-etl", "report"], runs)

        # batonRuns takes the name in the build, or the id.
        for name in ("etl", "nightly-etl"):
            out = self.gradle(p, "-q", "batonRuns", "-Pbaton.workflow=" + name)
            self.assertEqual(len(re.findall(r"\w{26}\s+nightly-etl\s+SUCCEEDED", out)), 2, out)
            self.assertNotIn("report", out)

        # A name must make a task name: it needs a letter or digit, and one of its own.
        build = os.path.join(p, "build.gradle")
        with open(build) as f:
            text = f.read()
        with open(build, "w") as f:
            f.write(text + "baton { workflow('Etl') { file = file('src/workflows/etl.yaml') } }\n")
        out = self.gradle(p, "tasks", ok=False)
        self.assertIn("baton workflow 'Etl': its task batonRunEtl exists already, for baton workflow 'etl'", out)
        with open(build, "w") as f:
            f.write(text + "baton { workflow('--') { file = file('src/workflows/etl.yaml') } }\n")
        out = self.gradle(p, "tasks", ok=False)
        self.assertIn("`--` cannot name a workflow", out)

    def test_two_builds_in_one_daemon_each_with_its_own_class_loader(self):
        p = self.project("daemon")
        self.assertIn("step `count` succeeded", self.gradle(p, "batonRunReport"))
        copies = self.native_copies()
        self.assertGreaterEqual(copies, 1, "the first build loaded the native library")

        # Another buildscript classpath: the daemon loads the plugin, and so the native library, again.
        build = os.path.join(p, "build.gradle")
        with open(build) as f:
            text = f.read()
        plugin = 'classpath "dev.baton:baton-gradle-plugin:$batonVersion"'
        self.assertIn(plugin, text)
        with open(build, "w") as f:
            f.write(text.replace(plugin, "classpath files('another-class-loader'); " + plugin))
        out = self.gradle(p, "batonRunReport", "batonRunEtl")
        self.assertIn("step `summarize` succeeded", out)
        self.assertRegex(out, r"run \w+ of `etl` succeeded")
        self.assertEqual(self.native_copies(), copies + 1, "the second class loader loads its own copy")
        self.assertEqual(glob.glob(os.path.join(self.native, "libbaton_jni-*")), [],
                         "an extracted copy is removed once loaded: a killed daemon leaves nothing behind")

        status = subprocess.run(["gradle", "--status"], env=self.env, capture_output=True, text=True,
                                timeout=BUILD_TIMEOUT).stdout
        self.assertEqual(len(re.findall(r"^\s*\d+\s+(?:IDLE|BUSY)", status, re.M)), 1, status)

    def test_runs_lists_the_runs_of_the_store(self):
        p = self.project("runs")
        self.assertIn("No runs in", self.gradle(p, "-q", "batonRuns"))
        self.gradle(p, "batonRunEtl", "batonRunReport")
        out = self.gradle(p, "-q", "batonRuns")
        self.assertRegex(out, r"RUN\s+WORKFLOW\s+STATUS")
        self.assertRegex(out, r"\w{26}\s+etl\s+SUCCEEDED")
        self.assertRegex(out, r"\w{26}\s+report\s+SUCCEEDED")

        out = self.gradle(p, "-q", "batonRuns", "-Pbaton.workflow=report")
        self.assertNotRegex(out, r"\w{26}\s+etl\s")
        self.assertRegex(out, r"\w{26}\s+report\s+SUCCEEDED")

        out = self.gradle(p, "batonRuns", "-Pbaton.workflow=nope", ok=False)
        self.assertIn("unknown workflow `nope`", out)
        self.assertIn("known: etl, report", out)


class Summary(unittest.TextTestResult):
    """Closes with the line `N passed, N failed` that CI reads."""

    def stopTestRun(self):
        super().stopTestRun()
        failed = len(self.failures) + len(self.errors)
        self.stream.writeln(f"{self.testsRun - failed} passed, {failed} failed")


def main():
    global BATON, KEEP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baton", help="the baton command, to check the inspect command of a failed run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary builds")
    parser.add_argument("-v", "--verbose", action="store_true")
    args, rest = parser.parse_known_args()
    BATON, KEEP = args.baton and os.path.abspath(args.baton), args.keep
    if shutil.which("gradle") is None:
        sys.exit("gradle is missing: apt-get install gradle (scripts/deps.sh does it as root)")
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1, resultclass=Summary)
    program = unittest.main(argv=[sys.argv[0], *rest], testRunner=runner, exit=False)
    sys.exit(0 if program.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
