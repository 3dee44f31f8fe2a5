"""From the figures measured on one machine to N concurrent readers of one story.

    .venv/bin/python benchmarks/capacity_model.py                 # the table in docs/scaling.md
    .venv/bin/python benchmarks/capacity_model.py --readers 2500000 --posts-per-minute 6

Every input is a measured figure (docs/performance.md names the run); change them here when
a measurement changes and the table follows. It is a model: it says where the first limit is
and how far the next node takes it, not what a particular data centre will do.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    cpu_us_per_delivery: float = 17.1  # one event to one reader, 100,000 readers (performance.md)
    kb_per_idle_reader: float = 10.9  # the same run
    streams_per_process: int = 15_000  # DATELINE_MAX_STREAMS, the default
    process_base_mb: float = 100.0  # a fresh server process
    cross_node_p99_ms: float = 80.0  # the slowest broker's p99 (performance.md, across nodes)
    # A reconnecting reader a few seconds behind is replayed from its process's window of recent
    # events: no query of its own; each process asks the story's id and the log's first id once
    # (performance.md, reconnect storm: 201 statements for 20,000 readers, the posts included).
    catch_up_queries_per_reader: float = 0.0
    catch_up_queries_per_process: float = 2.0
    catch_up_queries_per_reader_without_window: float = 2.0  # its replay's read and the story's status
    db_reads_per_event_per_process: float = 1.0  # the follower: one read of the log per wake


@dataclass(frozen=True)
class Node:
    cores: int = 16
    memory_gb: float = 64.0
    cpu_budget: float = 0.6  # of each core spent on deliveries; the rest for bursts, pages, the OS


def model(readers: int, posts_per_minute: float, events_per_post: float, node: Node, m: Measured) -> dict[str, float]:
    processes_for_streams = math.ceil(readers / m.streams_per_process)
    # Delivering: every event goes to every reader once.
    deliveries_per_s = readers * posts_per_minute * events_per_post / 60
    cores_for_delivery = deliveries_per_s * m.cpu_us_per_delivery / 1e6 / node.cpu_budget
    memory_gb = (readers * m.kb_per_idle_reader / 1e6) + processes_for_streams * m.process_base_mb / 1e3
    nodes = max(
        math.ceil(processes_for_streams / node.cores),
        math.ceil(cores_for_delivery / node.cores),
        math.ceil(memory_gb / (node.memory_gb * 0.8)),
        2,  # never one: a node must be able to fail
    )
    processes = max(processes_for_streams, nodes * node.cores)
    # One node lost: its readers reconnect to the others, inside the window of recent events.
    storm_readers = readers / nodes
    surviving_processes = processes - node.cores
    return {
        "readers": readers,
        "nodes": nodes,
        "processes": processes,
        "deliveries_per_s": deliveries_per_s,
        "memory_gb_per_node": memory_gb / nodes,
        "broker_deliveries_per_post": nodes * node.cores,  # one message sent, heard by every process
        "db_reads_per_post": processes * m.db_reads_per_event_per_process * events_per_post,
        "catch_up_reads_after_a_node_loss": storm_readers * m.catch_up_queries_per_reader
        + surviving_processes * m.catch_up_queries_per_process,
        "catch_up_reads_without_window": storm_readers * m.catch_up_queries_per_reader_without_window,
        # A process writes one event to its readers in turn: the last of them has it this late.
        "reach_all_s": min(readers, m.streams_per_process) * m.cpu_us_per_delivery / 1e6 + m.cross_node_p99_ms / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, action="append",
                        help="concurrent readers of one story (repeatable); default 10k to 10M")
    parser.add_argument("--posts-per-minute", type=float, default=4.0)
    parser.add_argument("--events-per-post", type=float, default=1.2, help="posts plus edits, pins, corrections")
    parser.add_argument("--cores", type=int, default=Node.cores)
    parser.add_argument("--memory-gb", type=float, default=Node.memory_gb)
    args = parser.parse_args()
    node, measured = Node(cores=args.cores, memory_gb=args.memory_gb), Measured()
    audiences = args.readers or [10_000, 100_000, 1_000_000, 10_000_000]
    print(f"nodes of {node.cores} cores and {node.memory_gb:g} GB; {args.posts_per_minute:g} posts a minute, "
          f"{args.events_per_post:g} events a post")
    print("| readers | nodes | processes | deliveries/s | memory per node | every reader has it after | "
          "broker deliveries per post (1 sent) | log reads per post | catch-up queries after losing a node "
          "| (without the window) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for readers in audiences:
        r = model(readers, args.posts_per_minute, args.events_per_post, node, measured)
        print(f"| {readers:,} | {r['nodes']:,.0f} | {r['processes']:,.0f} | {r['deliveries_per_s']:,.0f} | "
              f"{r['memory_gb_per_node']:.1f} GB | {r['reach_all_s']:.2f} s | {r['broker_deliveries_per_post']:,.0f} | "
              f"{r['db_reads_per_post']:,.0f} | {r['catch_up_reads_after_a_node_loss']:,.0f} | "
              f"{r['catch_up_reads_without_window']:,.0f} |")


if __name__ == "__main__":
    main()
