"""The notebook kernels of a monthly run, started warm by forking this process.

A Jupyter kernel started the usual way is a new Python interpreter that
imports pandas, the analysis stack and IPython again: about 4 CPU-seconds per
kernel before it runs a cell. The monthly run has imported most of that
already, so :class:`KernelZygote` forks this process early, while it has only
one thread and no socket, and the child waits. When jupyter_client launches
the kernel (:func:`kernel_manager`), the waiting child turns into it: it
takes the launch command's environment and working folder, and runs
ipykernel's own application with the launch command's arguments. To
jupyter_client it is a kernel like any other (its process is a
:class:`ForkedKernelProcess`, which it signals and waits for as it would a
``Popen``).

Forking is used only where it is safe (:func:`can_fork_kernels`): a POSIX
process with a single thread that is not itself a Jupyter kernel. Anywhere
else (JupyterLab, a Dask worker, Windows) the kernels start the usual way.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from pathlib import Path

__all__ = ["KernelZygote", "ForkedKernelProcess", "can_fork_kernels", "kernel_manager", "stop_kernel",
           "PRELOADED"]

#: Imported here before the zygotes fork, so every kernel starts with them (the monthly run imports
#: most of them anyway). pyplot is left to the kernel: it picks its backend when first imported.
PRELOADED = ("pandas", "matplotlib", "IPython.display", "ipykernel.kernelapp", "crm_analysis.monthly",
             "crm_analysis.plotting", "crm_analysis.quality", "crm_analysis.report.sections")
#: The kernel's command as jupyter_client builds it for the python3 kernel: ``python -m ipykernel_launcher``.
_LAUNCHER = ["-m", "ipykernel_launcher"]
#: The longest path of a Unix socket (``sockaddr_un.sun_path`` less its final NUL on Linux).
IPC_PATH_MAX = 107


def can_fork_kernels() -> bool:
    """Whether kernels may be forked from this process: POSIX, one thread, and not a Jupyter kernel itself
    (where sockets, threads and an event loop already run)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return not (kernelapp is not None and kernelapp.IPKernelApp.initialized())


class ForkedKernelProcess:
    """What jupyter_client's ``LocalProvisioner`` needs of a ``Popen``, for a kernel forked from this process."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped elsewhere
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        """The exit code, or None while the kernel runs."""
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the kernel to end (the provisioner calls this once :meth:`poll` says it has)."""
        return self._reap(0)

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class KernelZygote:
    """A child forked now, which waits until :meth:`launch` turns it into a notebook kernel.

    Fork it while this process has one thread and no socket (see
    :func:`can_fork_kernels`). The child starts its own session (so the
    kernel's process group is its own, as jupyter_client expects). If this
    process ends without launching it, the child sees its pipe close and exits.
    """

    #: The write ends of the zygotes waiting now: a zygote forked later closes its copies of them.
    _waiting: set[int] = set()

    def __init__(self) -> None:
        read, self._write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: wait for the launch command, then become the kernel
            code = 1
            try:
                for fd in (self._write, *KernelZygote._waiting):
                    os.close(fd)
                KernelZygote._waiting.clear()
                os.setsid()
                with os.fdopen(read, "rb") as pipe:
                    message = pipe.read()  # until this process's launch() or end closes the pipe
                code = _become_kernel(*pickle.loads(message)) if message else 0
            except BaseException:  # noqa: BLE001 - a child must never return into the parent's code
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(read)
        KernelZygote._waiting.add(self._write)

    def launch(self, cmd: list[str], env: dict[str, str] | None, cwd: str | None) -> ForkedKernelProcess:
        """Turn the child into the kernel that `cmd` (``python -m ipykernel_launcher ...``) would start."""
        env = dict(os.environ if env is None else env, JPY_PARENT_PID=str(os.getpid()))
        # ipykernel read JPY_PARENT_PID when it was imported here; the kernel watches this process through
        # it (and ends when this process does), so it is passed as an argument too.
        argv = [*cmd[3:], f"--IPKernelApp.parent_handle={os.getpid()}"]
        KernelZygote._waiting.discard(self._write)
        with os.fdopen(self._write, "wb") as pipe:
            pipe.write(pickle.dumps((argv, env, None if cwd is None else str(cwd))))
        return ForkedKernelProcess(self.pid)

    def discard(self) -> None:
        """End a child that was never launched."""
        if self._write not in KernelZygote._waiting:
            return  # launched: the kernel is stopped through its kernel manager
        KernelZygote._waiting.discard(self._write)
        os.close(self._write)
        ForkedKernelProcess(self.pid).wait()


def _become_kernel(argv: list[str], env: dict[str, str], cwd: str | None) -> int:
    """In a zygote: run ipykernel's application as ``python -m ipykernel_launcher *argv`` would."""
    import asyncio

    os.environ.clear()
    os.environ.update(env)
    import tempfile

    tempfile.tempdir = None  # read $TMPDIR again: the run gives its kernels a folder in its private one
    if cwd:
        os.chdir(cwd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # jupyter_client gives a kernel a pipe for stdin, never the terminal
    os.close(null)
    asyncio.set_event_loop(None)  # ipykernel makes its own event loop
    sys.argv = [sys.executable, *argv]
    if "" not in sys.path:
        sys.path.insert(0, "")  # as ``python -m`` puts the working folder first
    # The environment's thread counts were read when numpy was imported here, before the fork.
    from threadpoolctl import threadpool_limits

    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        threadpool_limits(limits=int(threads))
    # matplotlib read MPLBACKEND when it was imported; a kernel draws inline unless told otherwise.
    if "matplotlib" in sys.modules:
        backend = os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        sys.modules["matplotlib"].rcParams["backend"] = backend
    from ipykernel.kernelapp import IPKernelApp

    try:
        IPKernelApp.launch_instance(argv=argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0
    return 0


def kernel_manager(private: Path, index: int, zygote: KernelZygote | None = None):
    """A ``KernelManager`` on private Unix sockets that remembers the clients it hands out (nbclient does not
    stop the clients of a kernel manager it was given), and launches its kernel from `zygote` when one is given.

    Its connection file and sockets are in `private` (``kernelN.json``, ``kernelN-1`` ...), never in
    ``$TMPDIR`` itself, so a killed run leaves them where the next run removes them. Where the socket paths
    would be too long for a Unix socket (about 107 bytes: a deep ``$TMPDIR``), the kernel listens on
    127.0.0.1 instead (as Jupyter does by default; the connection file, with the key, stays private).
    """
    from jupyter_client.manager import KernelManager

    class RunKernelManager(KernelManager):
        def client(self, **client_kwargs):
            client = super().client(**client_kwargs)
            self.clients.append(client)
            return client

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
            waiting, self.zygote = self.zygote, None
            if waiting is None or list(kernel_cmd[1:3]) != _LAUNCHER:
                if waiting is not None:
                    waiting.discard()
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            process = waiting.launch(kernel_cmd, kw.get("env"), kw.get("cwd"))
            provisioner = self.provisioner  # what LocalProvisioner.launch_kernel records of a Popen
            provisioner.process, provisioner.pid, provisioner.pgid = process, process.pid, process.pid
            provisioner.cwd = kw.get("cwd") or os.getcwd()
            self._reconcile_connection_info(provisioner.connection_info)

    sockets = private / f"kernel{index}"
    where = (dict(transport="ipc", ip=str(sockets)) if len(os.fsencode(f"{sockets}-99")) <= IPC_PATH_MAX
             else dict(transport="tcp", ip="127.0.0.1"))
    km = RunKernelManager(kernel_name="python3", connection_file=str(private / f"kernel{index}.json"), **where)
    km.clients = []
    km.zygote = zygote
    return km


def stop_kernel(km) -> None:
    """Stop the kernel of `km` (a kernel manager passed to nbclient is ours to stop) and its clients."""
    try:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    finally:
        km.cleanup_resources()
        for client in km.clients:  # left to the garbage collector, a context can be finalized before
            client.stop_channels()  # its sockets and hang the process in zmq_ctx_term
        if getattr(km, "zygote", None) is not None:  # started but never launched
            km.zygote.discard()
            km.zygote = None
