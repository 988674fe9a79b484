#!/usr/bin/env python3
"""Device list of an hccl rank table (the JSON file of the card's run_distribute_train_ascend.sh, as
MindSpore's hccl_tools.py writes it), for a torchrun launch on this machine.

    python3 rank_table.py rank_table_8pcs.json      ->  0,1,2,3,4,5,6,7   (the device_ids, in rank_id order)

Format (version 1.0): {"server_count": "1", "server_list": [{"server_id": ..., "device": [{"device_id": "0",
"device_ip": ..., "rank_id": "0"}, ...]}], "status": "completed"}. One server only: a table of several servers
is a multi-node job (run torchrun --nnodes on each). Any problem is one line on stderr and exit status 1.
"""
import json
import sys


def devices(path: str) -> list[int]:
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except OSError as exc:
        raise ValueError(f"rank table not found or unreadable: {path} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"rank table {path} is not JSON: {exc}") from None
    servers = table.get("server_list") if isinstance(table, dict) else None
    if not isinstance(servers, list) or not servers:
        raise ValueError(f"rank table {path} has no server_list (hccl rank table format expected)")
    if len(servers) > 1:
        raise ValueError(f"rank table {path} lists {len(servers)} servers: this launcher runs one machine; "
                         "start torchrun --nnodes=N --node_rank=i ... train.py on each server instead")
    found = []
    for d in servers[0].get("device") or []:
        try:
            found.append((int(d["rank_id"]), int(d["device_id"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"rank table {path}: each device needs integer device_id and rank_id, got {d}") from None
    if not found:
        raise ValueError(f"rank table {path} lists no device")
    ranks = sorted(r for r, _ in found)
    if ranks != list(range(len(found))):
        raise ValueError(f"rank table {path}: rank_id must be 0..{len(found) - 1}, got {ranks}")
    ids = [dev for _, dev in sorted(found)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"rank table {path}: a device_id appears twice ({ids})")
    return ids


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("[Error] usage: rank_table.py RANK_TABLE_FILE", file=sys.stderr)
        return 1
    try:
        print(",".join(str(i) for i in devices(argv[0])))
    except ValueError as exc:
        print(f"[Error] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
