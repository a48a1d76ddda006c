"""Straightforward NumPy re-implementations of the official DEQ-Flow solver loops (B = 1).

Written from the semantics of ``code.v.2.0/core/deq/solvers.py`` (not a copy of it): each
function returns the returned state, the captured (index, state) pairs (official
``indexing``: only the indices reached are appended), the
step of the lowest residual, the lowest abs/rel residuals and the per-step residual lists
(abs, rel) of every evaluated iterate in evaluation order, so tests can compare the
whole trajectory.
"""
from __future__ import annotations

import numpy as np

INIT = 1e8


def _track(state, a, r, step, cand, stop_mode, slack=0.0):
    for mode, v in (("abs", a), ("rel", r)):
        if v < state["lowest"][mode] + slack:
            if mode == stop_mode:
                state["best"] = cand.copy()
            state["lowest"][mode] = v
            state["step"][mode] = step


def _new_state(x0):
    return {"best": x0.copy(), "lowest": {"abs": INIT, "rel": INIT}, "step": {"abs": 0, "rel": 0}}


def anderson(f, x0, threshold, eps, stop_mode="abs", indexing=(), m=6, lam=1e-4, beta=1.0):
    d = x0.size
    X = np.zeros((m, d))
    F = np.zeros((m, d))
    X[0] = x0
    F[0] = f(x0)
    X[1] = F[0]
    F[1] = f(F[0])
    res = [(np.linalg.norm(F[0] - X[0]), np.linalg.norm(F[0] - X[0]) / (np.linalg.norm(F[0]) + 1e-8)),
           (np.linalg.norm(F[1] - X[1]), np.linalg.norm(F[1] - X[1]) / (np.linalg.norm(F[1]) + 1e-8))]
    st = _new_state(x0)
    caps = []
    for k in range(2, threshold):
        n = min(k, m)
        G = F[:n] - X[:n]
        H = np.zeros((n + 1, n + 1))
        H[0, 1:] = 1.0
        H[1:, 0] = 1.0
        H[1:, 1:] = G @ G.T + lam * np.eye(n)
        rhs = np.zeros(n + 1)
        rhs[0] = 1.0
        alpha = np.linalg.solve(H, rhs)[1:]
        X[k % m] = beta * alpha @ F[:n] + (1 - beta) * alpha @ X[:n]
        F[k % m] = f(X[k % m])
        a = np.linalg.norm(F[k % m] - X[k % m])
        r = a / (np.linalg.norm(F[k % m]) + 1e-8)
        res.append((a, r))
        _track(st, a, r, k + 1, F[k % m], stop_mode)
        if (k + 1) in indexing:
            caps.append((k + 1, st["best"].copy()))
        if (a if stop_mode == "abs" else r) < eps:
            break
    return st["best"], caps, st["step"][stop_mode], st["lowest"], res


def naive(f, x0, threshold, eps, stop_mode="abs", indexing=()):
    st = _new_state(x0)
    caps = []
    res = []
    fx = x0
    for k in range(threshold):
        x = fx
        fx = f(x)
        a = np.linalg.norm(fx - x)
        r = a / (np.linalg.norm(fx) + 1e-8)
        res.append((a, r))
        _track(st, a, r, k + 1, fx, stop_mode, slack=1.0)  # return_final=True
        if (k + 1) in indexing:
            caps.append((k + 1, st["best"].copy()))
        if (a if stop_mode == "abs" else r) < eps:
            break
    return st["best"], caps, st["step"][stop_mode], st["lowest"], res


def broyden(f, x0, threshold, eps, stop_mode="abs", indexing=()):
    d = x0.size
    g = lambda y: f(y) - y  # noqa: E731
    U = np.zeros((d, threshold))
    VT = np.zeros((threshold, d))
    matvec = lambda U, VT, v: -v + U @ (VT @ v)  # noqa: E731   (-I + U V^T) v
    rmatvec = lambda U, VT, v: -v + (v @ U) @ VT  # noqa: E731  v^T (-I + U V^T)
    x = x0.copy()
    gx = g(x)
    update = gx.copy()
    st = _new_state(x0)
    caps = []
    res = []
    trace = [INIT]
    nstep = 0
    while nstep < threshold:
        x_new = x + update
        gx_new = g(x_new)
        dx, dg = x_new - x, gx_new - gx
        x, gx = x_new, gx_new
        nstep += 1
        a = np.linalg.norm(gx)
        r = a / (np.linalg.norm(gx + x) + 1e-8)
        res.append((a, r))
        _track(st, a, r, nstep, x, stop_mode)
        trace.append(a if stop_mode == "abs" else r)
        if (nstep + 1) in indexing:
            caps.append((nstep + 1, st["best"].copy()))
        obj = a if stop_mode == "abs" else r
        if obj < eps:
            break
        if nstep > 30:
            last = np.array(trace[-30:])
            if obj < 3 * eps and last.max() / last.min() < 1.3:
                break
        pu, pv = U[:, :nstep - 1], VT[:nstep - 1]
        vT = rmatvec(pu, pv, dx)
        u = (dx - matvec(pu, pv, dg)) / (vT @ dg)
        VT[nstep - 1] = vT
        U[:, nstep - 1] = u
        update = -matvec(U[:, :nstep], VT[:nstep], gx)
    return st["best"], caps, st["step"][stop_mode], st["lowest"], res
