"""What every node checks when it runs: no NaN or inf among its inputs, and that the libraries
it imports late (diffusers, transformers, peft: registering the nodes imports none of them)
load, or an error that names the library and the package to repair."""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..core.errors import EditError
from ..core.images import non_finite

PACK = __package__.rpartition(".")[0]  # the pack's module name, whatever the host imported it as
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
F = TypeVar("F", bound=Callable[..., Any])


def checked(title: str) -> Callable[[F], F]:
    """Decorate a node's FUNCTION: every tensor input (IMAGE, MASK) and float widget must be
    finite, else an EditError names ``title › input``."""
    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            for name, value in signature.bind(*args, **kwargs).arguments.items():
                check_finite(value, f"{title} › {name}")
            return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def check_finite(value: object, where: str) -> None:
    """Refuse a NaN/inf float widget or a tensor holding any (a Python comparison with NaN is
    False, so a range check lets NaN through; one NaN makes every output NaN, saved as black)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise EditError(where, f"The value is {value}, not a number this node can use.",
                        "Type a finite number in the widget (or fix the node that feeds it).")
    if isinstance(value, torch.Tensor) and (bad := non_finite(value)):
        raise EditError(where, f"{bad} of its {value.numel()} values are NaN or infinite; every output "
                               "would be NaN (saved as a black picture).",
                        "Fix or replace the node that made it (look for a division by zero or a float16 "
                        "overflow upstream).")


@contextmanager
def libraries(title: str) -> Iterator[None]:
    """Around a node's late imports of the pack's heavy modules: a library that fails to import
    becomes an EditError naming ``title``, the library and the package to repair."""
    try:
        yield
    except Exception as err:
        error = library_error(err, title)
        if error is None:
            raise
        raise error from err


def library_error(err: BaseException, title: str) -> EditError | None:
    """The EditError for an import that failed outside the pack, or None if the pack's own code
    failed (a bug to show as it is)."""
    chain = _chain(err)
    frames = [frame for e in chain for frame in _frames(e)]
    ours = [i for i, (module, _, _) in enumerate(frames) if _ours(module)]
    foreign = frames[ours[-1] + 1:] if ours else frames
    if foreign:  # the first foreign frame is the library the pack imported; the last module body, the broken one
        library = _top(foreign[0][0])
        bodies = [(module, e) for module, body, e in foreign if body]
        broken, cause = (_top(bodies[-1][0]), bodies[-1][1]) if bodies else (library, chain[-1])
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            broken = _top(cause.name)
    elif isinstance(err, ImportError) and err.name and not _ours(err.name):  # not installed, or too old
        library = broken = _top(err.name)
        cause = err
    else:
        return None
    return EditError(title, f"{library} failed to import: {_first_line(cause)}.", _fix(library, broken, cause))


def _fix(library: str, broken: str, cause: BaseException) -> str:
    pip = f"{sys.executable} -m pip"
    if isinstance(cause, ImportError) and cause.name and _top(cause.name) == broken:
        return f"Install the pack's requirements in ComfyUI's Python: {pip} install -r {REQUIREMENTS}, then restart."
    if broken == library:
        return (f"Reinstall {library} in ComfyUI's Python: {pip} install --force-reinstall --no-deps {library}, "
                "then restart.")
    return (f"Repair or uninstall {broken} in ComfyUI's Python (it breaks {library}): {pip} uninstall {broken}, "
            "then restart.")


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it came from, outermost first."""
    chain: list[BaseException] = []
    while err is not None and all(err is not seen for seen in chain):
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def _frames(err: BaseException) -> Iterator[tuple[str, bool, BaseException]]:
    """(module name, whether the frame runs the module's body, ``err``) for each frame of its
    traceback, outermost first; the import machinery's own frames are left out."""
    tb = err.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if not module.startswith("importlib"):
            yield module, tb.tb_frame.f_code.co_name == "<module>", err
        tb = tb.tb_next


def _ours(module: str) -> bool:
    return module == PACK or module.startswith(PACK + ".")


def _top(module: str) -> str:
    return module.partition(".")[0]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0].rstrip('.')}" if text else type(err).__name__
