"""`supalite sessions init`: copy the shipped migrations into a project's supabase/migrations.

mcp-ts's `supabase-init` skips any file whose name exists, without looking inside, so a project
initialised with an older release never sees a changed file.  Here a same-named file with other
content is reported (and left alone): the user decides, nothing is silently kept or replaced.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from supalite.sessions import migrations


@dataclass
class InstallReport:
    copied: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)


def install(project_dir: Path) -> InstallReport:
    target = project_dir / "supabase" / "migrations"
    target.mkdir(parents=True, exist_ok=True)
    report = InstallReport()
    for src in migrations.files():
        dest = target / src.name
        if not dest.exists():
            shutil.copyfile(src, dest)
            report.copied.append(dest)
        elif dest.read_bytes() == src.read_bytes():
            report.unchanged.append(dest)
        else:
            report.conflicts.append(dest)
    return report
