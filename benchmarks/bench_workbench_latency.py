"""Workbench latency: from a slider change to the updated preview, in a real Jupyter kernel.

A kernel runs the workbench (``Workbench(...).widget()``); this script plays the browser: it
sends the comm message a slider sends when it moves, and times until the kernel sends the new
preview image (the message the browser draws). Debounce, anny, scene update, Cycles, labels,
overlay drawing and PNG encoding are all inside the figure; the browser's own drawing is not.

Usage: python benchmarks/bench_workbench_latency.py [--moves 12] [--quality interactive]
Prints a table (median / p90 per slider kind, machine load) and writes
outputs/benchmarks/workbench_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# Slider -> values it steps through (one move per value). Lighting rewrites the world, which
# makes Cycles rebuild the HDRI importance map, so it is reported on its own.
SLIDERS = {
    "yaw": [5.0, 12.0, 20.0, 28.0, 35.0, 15.0],
    "pitch": [5.0, 10.0, -5.0, -12.0, 0.0, 8.0],
    "distance_m": [0.9, 1.1, 1.3, 1.0, 0.8, 1.2],
    "gaze_yaw": [10.0, 20.0, -10.0, -20.0, 0.0, 15.0],
    "jawOpen": [0.2, 0.4, 0.6, 0.3, 0.0, 0.5],
    "hdri_rotation": [30.0, 90.0, 150.0, 210.0, 270.0, 330.0],
}
LIGHTING = ("hdri_rotation",)


class KernelDriver:
    """A kernel with the workbench in it, driven the way JupyterLab drives it."""

    def __init__(self, setup_code: str) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3")
        self.execute(setup_code)

    def execute(self, code: str, timeout: float = 600) -> str:
        msg_id = self.kc.execute(code)
        out = []
        while True:
            m = self.kc.get_iopub_msg(timeout=timeout)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                raise RuntimeError("\n".join(m["content"]["traceback"]))
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return "".join(out)

    def move(self, comm_id: str, value) -> None:
        """What a slider sends when the user moves it."""
        data = {"method": "update", "state": {"value": value}, "buffer_paths": []}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))

    def wait_image(self, image_id: str, timeout: float = 120) -> float:
        """Block until the kernel sends a new preview image; returns the arrival time."""
        deadline = time.perf_counter() + timeout
        while True:
            m = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.perf_counter()))
            if m["msg_type"] != "comm_msg" or m["content"]["comm_id"] != image_id:
                continue
            data = m["content"]["data"]
            if data.get("method") == "update" and ["value"] in data.get("buffer_paths", []):
                return time.perf_counter()

    def drain(self, seconds: float) -> int:
        """Read messages for ``seconds``; returns how many preview images arrived meanwhile."""
        images, end = 0, time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            try:
                m = self.kc.get_iopub_msg(timeout=left)
            except Exception:  # queue.Empty
                break
            if m["msg_type"] == "comm_msg" and ["value"] in m["content"]["data"].get("buffer_paths", []):
                images += 1
        return images

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=6, help="moves per slider (at most 6)")
    ap.add_argument("--quality", default="interactive")
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=int, default=3)
    ap.add_argument("--preset", default="frontal", help="the notebook's defaults: frontal, index 3")
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmarks/workbench_latency.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    driver = KernelDriver(f"""
import json
from replicantface.workbench import Workbench
wb = Workbench(seed={args.seed}, index={args.index}, preset={args.preset!r}, quality={args.quality!r},
               resolution={args.resolution!r})
wb.frontal()
ui_root = wb.widget()
ui = wb._ui
""")
    ids = json.loads(driver.execute(
        "print(json.dumps({'image': ui.image.model_id, **{n: w.model_id for n, w in ui.inputs.items()}}))"))
    startup_s = time.perf_counter() - t0
    driver.move(ids["yaw"], 1.0)  # warm-up: the first render after start-up syncs everything
    driver.wait_image(ids["image"])
    driver.drain(0.5)

    cpu_code = "import psutil; t = psutil.Process().cpu_times(); print(t.user + t.system)"
    cpu_before = float(driver.execute(cpu_code))
    cpu_moves = 0
    results: dict[str, list[float]] = {}
    for name, values in SLIDERS.items():
        if name in LIGHTING and cpu_moves == 0:
            cpu_moves = sum(len(v) for v in results.values())
            cpu_geometry = float(driver.execute(cpu_code)) - cpu_before
        for value in values[: args.moves]:
            sent = time.perf_counter()
            driver.move(ids[name], value)
            results.setdefault(name, []).append(driver.wait_image(ids["image"]) - sent)
            driver.drain(0.3)  # the user looks at the new preview before moving again

    # A drag: 12 slider events 40 ms apart. Debounced, it renders once, after the last event.
    drag_values = np.linspace(-10.0, 20.0, 12)
    for v in drag_values[:-1]:
        driver.move(ids["yaw"], float(v))
        time.sleep(0.04)
    last = time.perf_counter()
    driver.move(ids["yaw"], float(drag_values[-1]))
    drag_latency = driver.wait_image(ids["image"]) - last
    extra_images = driver.drain(2.0)
    final = json.loads(driver.execute(
        "print(json.dumps({'yaw': wb.get('yaw'), 'runs': ui.debouncer.runs, 'dropped': ui.dropped, "
        "'device': wb.generator.device, 'resolution': wb.resolution, 'quality': wb.quality}))"))
    driver.close()
    load_after = os.getloadavg()

    geometry = [t for n, ts in results.items() if n not in LIGHTING for t in ts]
    lighting = [t for n in LIGHTING for t in results.get(n, [])]
    summary = {
        "quality": final["quality"], "resolution": final["resolution"], "device": final["device"],
        "startup_s": startup_s,
        "median_s": float(np.median(geometry)), "p90_s": float(np.percentile(geometry, 90)),
        "count": len(geometry),
        # Kernel CPU time per move (both cores' worth): what the latency would cost on an idle
        # machine, whatever else is running on this one.
        "kernel_cpu_s_per_move": cpu_geometry / cpu_moves,
        "lighting_median_s": float(np.median(lighting)) if lighting else None,
        "lighting_p90_s": float(np.percentile(lighting, 90)) if lighting else None,
        "per_slider": {n: {"median_s": float(np.median(ts)), "max_s": float(np.max(ts))}
                       for n, ts in results.items()},
        "drag_last_event_to_image_s": drag_latency,
        "drag_images_after_final": extra_images,
        "drag_final_yaw": final["yaw"],
        "load_before": load_before, "load_after": load_after, "cores": os.cpu_count(),
    }
    print(f"workbench latency, {final['quality']} {final['resolution']} px on {final['device']}, "
          f"{os.cpu_count()} cores, load {load_before[0]:.2f} before / {load_after[0]:.2f} after")
    print("| slider | median s | max s |\n|---|---|---|")
    for n, row in summary["per_slider"].items():
        print(f"| {n} | {row['median_s']:.2f} | {row['max_s']:.2f} |")
    print(f"pose/camera/gaze/expression sliders: median {summary['median_s']:.2f} s, "
          f"p90 {summary['p90_s']:.2f} s over {len(geometry)} moves; kernel CPU "
          f"{summary['kernel_cpu_s_per_move']:.2f} s per move (both cores)")
    if lighting:
        print(f"lighting sliders: median {summary['lighting_median_s']:.2f} s, "
              f"p90 {summary['lighting_p90_s']:.2f} s")
    print(f"drag of 12 events: last event -> image {drag_latency:.2f} s, "
          f"{extra_images} stale images after it, final yaw {final['yaw']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
