"""``zeroskip cache``: the simulator builds cached under $ZEROSKIP_CACHE; and the limit every
command that built a simulator keeps the cache to."""

import os
import sys
import time
from pathlib import Path

__all__ = ["cache_command", "limit_cache"]


def cache_command(args):
    from zeroskip.apps.cache import clear, entries, evict, format_size, parse_size
    from zeroskip.sim.loaders import BadInput
    from zeroskip.sim.rtl.cache import cache_root
    root = cache_root()
    if args.action == "clear" and args.limit is not None:
        raise BadInput("cache: clear removes everything; --limit keeps the newest entries: "
                       "give one")
    if args.action == "clear":
        removed = clear()
        print(f"removed {len(removed)} entries ({format_size(sum(e.size for e in removed))}) "
              f"from {root}")
        return
    if args.limit is not None:
        try:
            limit = parse_size(args.limit)
        except ValueError as exc:
            raise BadInput(f"--limit: {exc}") from None
        removed = evict(limit)
        for entry in removed:
            print(f"removed {entry.name} ({format_size(entry.size)})")
    found = entries()
    for entry in found:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{format_size(entry.size):>10}  {used}  {entry.name}")
    print(f"{format_size(sum(e.size for e in found))} in {len(found)} entries under {root} "
          f"(least recently used first; `zeroskip cache clear` removes them)")


def limit_cache(built):
    """After a command that built a simulator: keep the cache to $ZEROSKIP_CACHE_LIMIT (default
    ``DEFAULT_LIMIT``), least recently used first, never touching what this command built or
    anything used in the last hour (other processes may be running it)."""
    from zeroskip.apps.cache import DEFAULT_LIMIT, evict, format_size, parse_size
    text = os.environ.get("ZEROSKIP_CACHE_LIMIT", "").strip()
    if text.lower() in ("0", "none", "off"):
        return
    try:
        limit = parse_size(text) if text else DEFAULT_LIMIT
    except ValueError:
        limit = DEFAULT_LIMIT
    removed = evict(limit, keep=tuple(Path(p) for p in built), min_age=3600)
    if removed and sys.stderr.isatty():
        print(f"zeroskip: cache over {format_size(limit)}: removed {len(removed)} least recently "
              f"used builds ({format_size(sum(e.size for e in removed))}); see `zeroskip cache`",
              file=sys.stderr)
