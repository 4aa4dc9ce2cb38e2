"""Demo-site tests share the session site; each gets it back with no troubles and the base world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.demo.site import DemoSite


@pytest.fixture
def site(demo_site: DemoSite) -> Iterator[DemoSite]:
    world = demo_site.world
    demo_site.set_troubles()
    yield demo_site
    demo_site.set_troubles()
    demo_site.set_world(world)
