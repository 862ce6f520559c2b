"""Property: the command lines of ``python -m analysis`` and ``python -m scaling.train.generate`` never end in a
traceback.

Random arguments (budgets that are negative, zero, NaN, infinite or not numbers; unknown conventions; missing,
empty or wrong-kind paths; prompts with characters no tokenizer has seen, lone surrogates, empty prompts; huge or
negative lengths) are either accepted with values in range or rejected with exit code 2 and one ``error:`` line that
names the option and what is allowed. The parser properties run in-process; a few real command lines check the
same end to end.
"""

import contextlib
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from support import REPO, run_cli
from synthetic_sweep import write_sweep

EXAMPLES = 60  # per property; derandomized

numbers_as_text = st.one_of(
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "0",
            "-0",
            "-1",
            "1e21",
            "1e-300",
            "1e400",
            "abc",
            "",
            " ",
            "1e21x",
            "0.5",
            "1",
            "2",
            "0x10",
            "1_000",
            "९",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.text(max_size=5),
)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    sweep = write_sweep(root / "sweep", budgets=(1e13, 1e14), n_sizes=4, with_bad_runs=False)
    (root / "a_file").write_text("not a sweep")
    (root / "empty").mkdir()
    return {
        "sweep": str(sweep),
        "missing": str(root / "missing"),
        "file": str(root / "a_file"),
        "blank": "",
        "empty": str(root / "empty"),
        "out_in_file": str(root / "a_file" / "out"),
        "out": str(root / "out"),
    }


def _parse(argv):
    from analysis.cli.main import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser().parse_args(argv), err.getvalue()
        except SystemExit as e:
            return e.code, err.getvalue()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(["report", "fit", "predict", "plot"]),
    where=st.sampled_from(["sweep", "missing", "file", "blank", "empty"]),
    options=st.lists(
        st.tuples(
            st.sampled_from(
                ["--budget", "--level", "--n-boot", "--seed", "--jobs", "--flops", "--params", "--grid", "--out"]
            ),
            st.one_of(
                numbers_as_text,
                st.sampled_from(
                    ["6n", "6N", "chinchilla", "kaplan", "total", "non_embedding", "small", "out", "out_in_file"]
                ),
            ),
        ),
        max_size=4,
    ),
)
@example(command="predict", where="sweep", options=[("--budget", "nan")])
@example(command="predict", where="sweep", options=[("--budget", "inf")])
@example(command="predict", where="sweep", options=[("--budget", "1e400")])
@example(command="predict", where="sweep", options=[("--jobs", "0")])
@example(command="predict", where="sweep", options=[("--seed", "-1")])
def test_analysis_arguments_are_accepted_in_range_or_rejected_with_exit_2(places, command, where, options):
    argv = [command, places[where]]
    for flag, value in options:
        if flag == "--out" and value in places:
            value = places[value]
        if command == "predict" and flag == "--out":
            continue  # predict has no --out: argparse's own "unrecognized arguments" is tested by the CLI test
        argv += [flag, value]
    result, err = _parse(argv)
    if isinstance(result, int):
        assert result == 2 and "error:" in err and "Traceback" not in err, err
        return
    args = result
    assert str(args.sweep_dir).strip() and args.sweep_dir == Path(places[where])
    assert all(math.isfinite(b) and b > 0 for b in args.budget or [])
    assert 0 < args.level < 1 and (args.n_boot == 0 or args.n_boot >= 2) and args.seed >= 0
    assert args.jobs is None or args.jobs >= 1 or args.jobs == -1
    out = getattr(args, "out", None)
    assert out is None or not any(q.exists() and not q.is_dir() for q in (out, *out.parents))


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["predict", "{sweep}", "--budget", "nan"],
            "argument --budget: 'nan': must be a finite positive number of FLOPs",
        ),
        (["predict", "{sweep}", "--budget=-1e21"], "argument --budget: '-1e21': must be a finite positive number"),
        (["fit", "{sweep}", "--flops", "6N"], "argument --flops: invalid choice: '6N'"),
        (["fit", "{missing}"], "error: sweep directory '{missing}' does not exist"),
        (["report", "{sweep}", "--out", "{out_in_file}"], "is a file; must be a folder"),
    ],
)
def test_the_analysis_cli_exits_2_with_one_clear_error(places, args, message):
    argv = [a.format(**places) for a in args]
    r = run_cli(["-m", "analysis", *argv], cwd=REPO, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert message.format(**places) in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


# ---------------------------------------------------------------------------------------------------------------
# scaling.train.generate


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, default_corpus):
    out = tmp_path_factory.mktemp("gen")
    r = run_cli(
        [
            "-m",
            "scaling.train",
            "model.size=3e3",
            "train.tokens=8192",
            "model.seq_len=32",
            "train.batch_size=8",
            "train.eval_tokens=1024",
            "train.final_eval_tokens=1024",
            "log.progress=false",
            "sweep=gen",
            f"results_dir={out}",
        ],
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = [p for p in (out / "gen").iterdir() if not p.name.startswith("_")]
    return run


def _generate(argv):
    from scaling.train.generate import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


prompts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "ROMEO.",
            "héllo 🙂 世界",
            "\x00\x01\x7f",
            "\u200b",
            "\udcff",
            "a\udc80b",
            "\ufeff",
            "\n" * 5,
            "x" * 300,
        ]
    ),
)


@pytest.mark.slow
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    prompt=prompts,
    max_new=st.sampled_from([-5, 0, 1, 4, 100_001, 10**9, 2**70]),
    temperature=st.sampled_from([0.0, 0.8, -1.0, float("nan"), float("inf"), 1e6]),
    top_k=st.sampled_from([-3, 0, 1, 40, 10**6]),
    num_samples=st.sampled_from([0, 1, 2, 10**6]),
)
@example(prompt="\udcff", max_new=4, temperature=0.8, top_k=40, num_samples=1)
@example(prompt="", max_new=4, temperature=0.8, top_k=40, num_samples=1)
def test_generate_arguments_are_run_or_rejected_with_exit_2(
    finished_run, prompt, max_new, temperature, top_k, num_samples
):
    argv = [
        str(finished_run),
        "--prompt",
        prompt,
        "--max-new-tokens",
        str(max_new),
        "--temperature",
        str(temperature),
        "--top-k",
        str(top_k),
        "--num-samples",
        str(num_samples),
    ]
    rc, out, err = _generate(argv)
    if rc == 0:
        assert 1 <= max_new <= 100_000 and 1 <= num_samples <= 1000 and top_k >= 0
        assert math.isfinite(temperature) and 0 <= temperature <= 100
        assert out.count("--- sample") == (num_samples if num_samples > 1 else 0)
    else:
        assert rc == 2 and err.startswith("error: --") and "must" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_generate_refuses_a_prompt_that_is_not_utf8_on_the_real_command_line(tmp_path):
    r = run_cli(["-m", "scaling.train.generate", str(tmp_path), "--prompt", b"RO\xffMEO"], timeout=120, text=False)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2 and "--prompt=" in err and "must be valid UTF-8 text" in err and "Traceback" not in err
    rc, _, err = _generate([str(tmp_path / "nope"), "--max-new-tokens", "5"])
    assert rc == 2 and err.startswith("error: run_dir=") and "must be an existing run directory" in err


@pytest.mark.slow
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(prompt=prompts)
def test_any_text_prompt_samples_and_only_non_utf8_is_refused(finished_run, prompt):
    """A byte-level BPE encodes every Unicode character (emoji, NUL, zero-width, BOM); an empty prompt starts from
    <|endoftext|>. Only text that is not UTF-8 at all (lone surrogates) cannot be encoded, and is refused."""
    rc, out, err = _generate([str(finished_run), "--prompt", prompt, "--max-new-tokens", "3", "--seed", "1"])
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        assert rc == 2 and "must be valid UTF-8 text" in err, err
        return
    assert rc == 0 and err == "" and out.endswith("\n"), (rc, err)
