"""jaxgen's MADDPG against AgileRL's (PyTorch, from the package index) on simple_spread with
continuous actions, side by side in one run: the same hyper-parameters and env steps, wall time
of training and the trained policies' returns measured in ONE convention.

    python benchmarks/agilerl_maddpg.py                               # creates benchmarks/.venvs/agilerl on first use
    python benchmarks/agilerl_maddpg.py --total-steps 200000 --seeds 1 8 --peer-seeds 3
    python benchmarks/agilerl_maddpg.py --skip-peer                   # the jaxgen side only

AgileRL runs in its own virtual environment (``benchmarks/.venvs/agilerl``: CPU ``torch`` 2.13,
``agilerl`` 2.58, ``mpe2`` 1.1 -- agilerl brings a numpy, gymnasium and jax of its own), made by this
script, which then runs itself there with ``--peer`` and reads one JSON line back.

The task: jaxgen trains on jaxmarl's ``MPE_simple_spread_v3``, AgileRL on mpe2's
``simple_spread_v3`` (PettingZoo's MPE, what AgileRL's own tutorials train on); the two agree step
for step on the same start state and actions (``tests/rl/test_mpe_agreement.py``) except for the
episode length (mpe2 25 steps, jaxmarl 26). **One convention for the returns**: every trained
policy -- jaxgen's actors exported to plain arrays (npz) and AgileRL's -- is evaluated by the same
code in mpe2, 100 deterministic 25-step episodes per seed, return per agent (each agent's own
reward: half its collision penalty plus half the shared negative landmark distance), minimum
landmark distance and collisions per episode; a uniform random policy is measured the same way.
jaxgen's policies are also reported in jaxmarl's 26-step convention (its own evaluation).

Both sides (the MADDPG study's settings, ``benchmarks/maddpg_study.py``): 16 envs, 200k env
steps, replay 200k, batch 256, one gradient step per agent every 16 env steps (one per vector
step), learning from 6,400 env steps, Adam 1e-2 (actors and critics), gamma 0.95, tau 0.01,
two hidden layers of 64 ReLU (AgileRL: its networks are an encoder and a head, each of at least
one hidden layer -- an encoder of one 64 layer into a 64-wide ReLU latent and a head of one 64
layer, three hidden layers of 64, the smallest it builds; its default layer norm switched
off), tanh outputs mapped onto the [0, 1] box, Gaussian exploration noise of std 0.1 in the tanh
range (0.05 of the box), per-agent networks (AgileRL groups agents named ``agent_0, agent_1, ...``
onto ONE shared network; the script names them ``agent0_0, agent1_0, ...`` so that each has
its own, as in MADDPG).

Differences that stay: jaxgen clips each network's gradient at global norm 0.5 (openai/maddpg's
preset), AgileRL does not clip; jaxgen draws each agent's minibatch separately (as openai/maddpg),
AgileRL one minibatch for all agents; AgileRL's critics take the actions into the head (after
the observation encoder), jaxgen's concatenate them with the observations at the input; AgileRL's 16 envs are stepped in-process in a Python loop
(cheaper on 2 cores than its subprocess ``AsyncPettingZooVecEnv``; the peer's timing is the
better for it). Timed: the training loop alone (jaxgen: one call of the compiled
``jit(vmap(train))``, ``lower + compile`` timed apart; AgileRL: its loop per seed, seeds one after
another).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PACKAGES = [["torch==2.13.0"], ["agilerl==2.58.0", "mpe2==1.1.1", "peft"]]  # agilerl imports peft unconditionally
EVAL_EPISODES = 100
EPISODE = 25  # mpe2's max_cycles


# ---------------------------------------------------------------- shared by both sides (numpy only)
def mpe2_evaluate(policy, episodes: int = EVAL_EPISODES, seed: int = 10_000) -> dict:
    """``policy(obs {agent: [O]}) -> {agent: [5]}`` on mpe2's simple_spread, ``episodes`` 25-step
    episodes: mean per-agent return, minimum landmark distance (mean over the steps of the mean
    over landmarks of the nearest agent's distance) and agent pairs touching per episode."""
    from mpe2 import simple_spread_v3

    env = simple_spread_v3.parallel_env(continuous_actions=True, max_cycles=EPISODE)
    rets, dists, cols = [], [], []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        agents = list(env.agents)
        ret, dist, col = np.zeros(len(agents)), 0.0, 0.0
        world = env.unwrapped.world
        for _ in range(EPISODE):
            obs, rew, term, trunc, _ = env.step(policy(obs))
            ret += [rew[a] for a in agents]
            p = np.stack([a.state.p_pos for a in world.agents])
            marks = np.stack([m.state.p_pos for m in world.landmarks])
            dist += np.linalg.norm(p[:, None] - marks[None], axis=-1).min(0).mean()
            size = np.array([a.size for a in world.agents])
            dd = np.linalg.norm(p[:, None] - p[None], axis=-1)
            col += ((dd < size[:, None] + size[None]) & ~np.eye(len(p), dtype=bool)).sum() / 2
            if not env.agents:
                break
        rets.append(ret.mean())
        dists.append(dist / EPISODE)
        cols.append(col)
    return {"return_per_agent": float(np.mean(rets)), "min_dist": float(np.mean(dists)), "collisions": float(np.mean(cols))}


def mlp_policy(layers: list, agents: list):
    """A numpy actor: ReLU hidden layers, ``tanh`` output mapped onto [0, 1] -- jaxgen's
    ``ddpg.Actor`` with ``low=0, high=1``; ``layers[i]`` the ``(W, b)`` list of agent ``i``."""

    def act(obs):
        out = {}
        for i, a in enumerate(agents):
            h = np.asarray(obs[a], np.float32)
            for j, (w, b) in enumerate(layers[i]):
                h = h @ w + b
                h = np.maximum(h, 0) if j < len(layers[i]) - 1 else 0.5 * (np.tanh(h) + 1)
            out[a] = h.astype(np.float32)
        return out

    return act


# ---------------------------------------------------------------- the peer (runs in the agilerl venv)
class _VecMPE:
    """``n`` mpe2 simple_spread envs stepped in-process; an episode's end resets that copy and
    hands back its true last observation for the replay."""

    def __init__(self, n: int, seed: int):
        from mpe2 import simple_spread_v3

        self.envs = [simple_spread_v3.parallel_env(continuous_actions=True, max_cycles=EPISODE) for _ in range(n)]
        self.agents = list(self.envs[0].possible_agents)
        self.seed = seed
        self.obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(self.envs)]
        self.resets = 0

    def stacked(self, obs_list):
        return {a: np.stack([o[a] for o in obs_list]).astype(np.float32) for a in self.agents}

    def step(self, actions: dict):
        nxt, cont, rew = [], [], []
        for i, e in enumerate(self.envs):
            o, r, _, trunc, _ = e.step({a: actions[a][i] for a in self.agents})
            nxt.append(o)
            rew.append([r[a] for a in self.agents])
            if any(trunc.values()):
                self.resets += 1
                o = e.reset(seed=self.seed + 1000 * self.resets + i)[0]
            cont.append(o)
        self.obs = cont
        return self.stacked(nxt), np.asarray(rew, np.float32)


def peer_train(seed: int, total_steps: int, num_envs: int, batch: int, learn_every: int, starts: int, buffer: int) -> dict:
    import torch
    from agilerl.algorithms import MADDPG
    from agilerl.components.data import MultiAgentTransition, transition_to_tensordict
    from agilerl.components.replay_buffer import ReplayBuffer

    torch.manual_seed(seed)
    np.random.seed(seed)
    venv = _VecMPE(num_envs, seed * 100_000)
    ids = {a: a.replace("_", "") + "_0" for a in venv.agents}  # agent_0 -> agent0_0: one network per agent
    env0 = venv.envs[0]
    net = {"latent_dim": 64, "encoder_config": {"hidden_size": [64], "activation": "ReLU", "layer_norm": False},
           "head_config": {"hidden_size": [64], "activation": "ReLU", "layer_norm": False}}
    agent = MADDPG([env0.observation_space(a) for a in venv.agents], [env0.action_space(a) for a in venv.agents],
                   agent_ids=[ids[a] for a in venv.agents], O_U_noise=False, expl_noise=0.1, vect_noise_dim=num_envs,
                   net_config=net, batch_size=batch, lr_actor=1e-2, lr_critic=1e-2, learn_step=learn_every,
                   gamma=0.95, tau=0.01, device="cpu")
    memory = ReplayBuffer(max_size=buffer, device="cpu")
    rename = lambda d: {ids[a]: v for a, v in d.items()}
    per_vec = max(1, num_envs // learn_every)
    every = max(1, learn_every // num_envs)
    t0 = time.perf_counter()
    agent.set_training_mode(True)
    steps = learns = 0
    for it in range(total_steps // num_envs):
        obs = rename(venv.stacked(venv.obs))
        action, raw = agent.get_action(obs=obs)
        nxt, rew = venv.step({a: action[ids[a]] for a in venv.agents})
        done = {ids[a]: np.zeros((num_envs, 1), np.float32) for a in venv.agents}
        tr = transition_to_tensordict(MultiAgentTransition(
            obs=obs, action=raw, reward={ids[a]: rew[:, i:i + 1] for i, a in enumerate(venv.agents)},
            next_obs=rename(nxt), done=done))
        tr.batch_size = torch.Size([num_envs])
        memory.add(tr)
        steps += num_envs
        if steps >= starts and len(memory) >= batch and it % every == 0:
            for _ in range(per_vec):
                agent.learn(memory.sample(batch))
                learns += 1
    train_s = time.perf_counter() - t0
    layers = []
    for a in venv.agents:
        actor = agent.actors[ids[a]]
        lin = [m for m in actor.modules() if isinstance(m, torch.nn.Linear)]
        layers.append([(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lin])
    agent.set_training_mode(False)

    def policy(obs):
        act, _ = agent.get_action(obs={ids[a]: np.asarray(o, np.float32)[None] for a, o in obs.items()})
        return {a: np.asarray(act[ids[a]])[0] for a in venv.agents}

    ev = mpe2_evaluate(policy)
    # the same actor through the numpy MLP: shows the exported architecture is the stated one
    ev_np = mpe2_evaluate(mlp_policy(layers, venv.agents), episodes=5)
    ev_ref = mpe2_evaluate(policy, episodes=5)
    assert abs(ev_np["return_per_agent"] - ev_ref["return_per_agent"]) < 1e-3, (ev_np, ev_ref)
    return {"seed": seed, "train_s": round(train_s, 1), "learn_steps": learns, **ev}


def peer(a) -> dict:
    import agilerl
    import torch

    runs = [peer_train(s, a.total_steps, a.num_envs, a.batch_size, a.update_every, a.batch_size * 25, a.buffer)
            for s in range(a.peer_seeds)]
    rnd_rng = np.random.default_rng(0)
    rnd = mpe2_evaluate(lambda obs: {k: rnd_rng.uniform(0, 1, 5).astype(np.float32) for k in obs})
    out = {"side": "agilerl", "version": getattr(agilerl, "__version__", "2.58.0"), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "runs": runs, "random_mpe2": rnd}
    if a.jaxgen_actors:
        z = np.load(a.jaxgen_actors, allow_pickle=False)
        seeds, n_layers = int(z["seeds"]), int(z["layers"])
        agents = [f"agent_{i}" for i in range(int(z["agents"]))]
        out["jaxgen_mpe2"] = [mpe2_evaluate(mlp_policy(
            [[(z[f"s{s}_a{i}_w{j}"], z[f"s{s}_a{i}_b{j}"]) for j in range(n_layers)] for i in range(len(agents))], agents))
            for s in range(seeds)]
    return out


# ---------------------------------------------------------------- jaxgen's side and the driver
def export_actors(state, path: Path) -> None:
    """The trained actors of every seed (leaves ``[S, A, ...]``) as plain arrays: ``(W, b)`` per
    dense layer in call order (the MLP's hidden layers, then the output layer)."""
    import jax

    p = jax.device_get(state.actor)
    mlp = p["MLP_0"]
    names = [("MLP_0", k) for k in sorted(mlp, key=lambda k: int(k.split("_")[-1]))] + [(None, "Dense_0")]
    s_n, a_n = np.asarray(p["Dense_0"]["kernel"]).shape[:2]
    arrays = {"seeds": s_n, "agents": a_n, "layers": len(names)}
    for s in range(s_n):
        for i in range(a_n):
            for j, (outer, k) in enumerate(names):
                d = p[outer][k] if outer else p[k]
                arrays[f"s{s}_a{i}_w{j}"] = np.asarray(d["kernel"][s, i], np.float32)
                arrays[f"s{s}_a{i}_b{j}"] = np.asarray(d["bias"][s, i], np.float32)
    np.savez(path, **arrays)


def ours(a) -> list[dict]:
    """jaxgen's runs, one per entry of ``--seeds`` (each count vmapped in one compile); the last
    run's actors exported for the evaluation in mpe2."""
    import jaxgen  # noqa: F401
    from jaxgen.rl import maddpg_fit

    sys.path.insert(0, str(HERE))
    from maddpg_study import study_config

    cfg = study_config("simple_spread", a.total_steps, a.num_envs, a.batch_size, a.update_every, a.buffer)
    rows = []
    for n in a.seeds:
        res = maddpg_fit.seeds_run(cfg, n, keep_state=True)
        rows.append({"side": "jaxgen", "seeds": n, "compile_s": res["compile_s"], "run_s": res["run_s"],
                     "per_seed_return_jaxmarl": res["per_seed_mean_return"], "min_dist_jaxmarl": res["min_dist"],
                     "collisions_jaxmarl": res["collisions"]})
        print(json.dumps(rows[-1]), flush=True)
    path = HERE / "results" / "agilerl_maddpg_jaxgen_actors.npz"
    export_actors(res["state"], path)
    rows[-1]["actors"] = str(path)
    return rows


def ensure_venv() -> Path:
    """The peer venv's python (``benchmarks/.venvs/agilerl``), made when absent."""
    sys.path.insert(0, str(HERE))
    from _venv import ensure_venv as make

    return make("agilerl", "agilerl, mpe2", *PACKAGES)


def table(mine: list[dict], peer_row: dict | None, steps: int) -> str:
    from jaxgen.core.timing import markdown_table

    rows = []
    if peer_row:
        r = peer_row["random_mpe2"]
        rows.append(["random policy", "-", "-", "-", "-", f"{r['return_per_agent']:.2f}", f"{r['min_dist']:.3f}",
                     f"{r['collisions']:.2f}", "-", "-"])
    jg = peer_row.get("jaxgen_mpe2") if peer_row else None
    t = np.asarray([r["train_s"] for r in peer_row["runs"]]) if peer_row else None
    for k, o in enumerate(mine):
        ev = jg if (jg and k == len(mine) - 1) else None  # the exported actors are the last run's
        ratio = f"{np.median(t) * o['seeds'] / o['run_s']:.1f}x" if t is not None else "-"
        rows.append([f"jaxgen MADDPG ({o['seeds']} seeds in one compile)", o["seeds"], o["compile_s"], o["run_s"],
                     f"{steps * o['seeds'] / o['run_s']:.0f}",
                     f"{np.mean([g['return_per_agent'] for g in ev]):.2f}" if ev else "-",
                     f"{np.mean([g['min_dist'] for g in ev]):.3f}" if ev else "-",
                     f"{np.mean([g['collisions'] for g in ev]):.2f}" if ev else "-",
                     f"{np.mean(o['per_seed_return_jaxmarl']):.2f}", ratio])
    if peer_row:
        runs = peer_row["runs"]
        rows.append([f"AgileRL {peer_row['version']} MADDPG (torch {peer_row['torch']}, {peer_row['threads']} threads)",
                     len(runs), "-", f"{t.sum():.1f} ({np.median(t):.1f} per seed)", f"{steps * len(runs) / t.sum():.0f}",
                     f"{np.mean([r['return_per_agent'] for r in runs]):.2f}", f"{np.mean([r['min_dist'] for r in runs]):.3f}",
                     f"{np.mean([r['collisions'] for r in runs]):.2f}", "-", "1.0x"])
    return markdown_table(["side", "seeds", "compile s", "run s", "env-steps/s", "return / agent (mpe2, 25 steps)",
                           "min landmark distance", "collisions / episode", "return / agent (jaxmarl, 26 steps)",
                           "AgileRL's time for these seeds / jaxgen's"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total-steps", type=int, default=200_000)
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--update-every", type=int, default=16)
    ap.add_argument("--buffer", type=int, default=200_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 8], help="jaxgen runs: seeds vmapped in one compile")
    ap.add_argument("--peer-seeds", type=int, default=3, help="AgileRL seeds, one after another")
    ap.add_argument("--peer", action="store_true", help="(internal) run AgileRL's side here and print one JSON line")
    ap.add_argument("--jaxgen-actors", type=Path, help="(internal) npz of jaxgen's actors to evaluate in mpe2")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--json", type=Path, help="write both sides' results here")
    a = ap.parse_args(argv)
    if a.peer:
        print(json.dumps(peer(a)))
        return
    from jaxgen.core.timing import header, load_average

    print(header("jax", "jaxlib", "flax", "optax"), flush=True)
    print(f"load before: {load_average()}", flush=True)
    py = None if a.skip_peer else ensure_venv()
    mine = ours(a)
    theirs = None
    if py is not None:
        args = [str(py), __file__, "--peer", "--jaxgen-actors", mine[-1]["actors"]]
        for k in ("total_steps", "num_envs", "batch_size", "update_every", "buffer", "peer_seeds"):
            args += [f"--{k.replace('_', '-')}", str(getattr(a, k))]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode:
            print("AgileRL side failed:\n" + r.stderr[-4000:], flush=True)
        else:
            theirs = json.loads(r.stdout.strip().splitlines()[-1])
            print(json.dumps(theirs), flush=True)
    print(f"load after: {load_average()}")
    print(table(mine, theirs, a.total_steps))
    if a.json:
        a.json.write_text(json.dumps({"header": header("jax"), "ours": mine, "peer": theirs}, indent=1))


if __name__ == "__main__":
    main()
