"""The side-by-side plot: CPU per forwarded packet and loss against subscribers (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import LABELS

COLORS = {"madoguchi": "#1f77b4", "janus": "#d62728", "relay": "#7f7f7f", "floor": "#2ca02c"}


def plot(results: dict[str, Any], path: Path) -> bool:
    """Write the PNG; False when matplotlib is missing (it is a test extra, not a server need)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    table = results.get("summary", {}).get("table", {})
    fig, (ax_cpu, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, points in table.items():
        ns = sorted(n for n, c in points.items() if c.get("server_us_per_packet"))
        if not ns:
            continue
        panels = [(ax_cpu, "server_us_per_packet", 1), (ax_loss, "loss", 100)]
        for ax, key, scale in panels[:1] if system == "floor" else panels:
            med = [points[n][key]["median"] * scale for n in ns]
            low = [m - points[n][key]["min"] * scale for m, n in zip(med, ns, strict=True)]
            high = [points[n][key]["max"] * scale - m for m, n in zip(med, ns, strict=True)]
            ax.errorbar(
                ns,
                med,
                yerr=[low, high],
                marker="o",
                linestyle="--" if system == "floor" else "-",
                capsize=3,
                color=COLORS.get(system),
                label=LABELS.get(system, system),
            )
    ax_cpu.set(
        xscale="log",
        yscale="log",
        xlabel="subscribers",
        ylabel="server CPU per forwarded packet (µs)",
        title="CPU per forwarded packet (median, min–max)",
    )
    ax_loss.set(
        xscale="log",
        xlabel="subscribers",
        ylabel="loss (%)",
        title="Packet loss at the subscribers",
    )
    ax_loss.axhline(0.5, color="black", linewidth=0.8, linestyle=":", label="0.5 % limit")
    for ax in (ax_cpu, ax_loss):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    meta = results.get("meta", {})
    fig.suptitle(
        f"{meta.get('cpu_model', '')}, {meta.get('cores')} cores, {meta.get('started_at', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
