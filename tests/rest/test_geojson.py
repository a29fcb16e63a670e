"""`Accept: application/geo+json`: PostgREST's GeoJSON FeatureCollection, rendered by PostGIS.

PostgREST (`Query/SqlFragment.hs` `asGeoJsonF`) renders the body as
`json_build_object('type', 'FeatureCollection', 'features',
coalesce(json_agg(ST_AsGeoJSON(_postgrest_t)::json), '[]'))`, ST_AsGeoJSON found on the
request's search path, and always accepts the media type (`SchemaCache.hs`
`initialMediaHandlers`): without PostGIS the statement fails with Postgres's own error, a table
without a geometry column with PostGIS's.  The expected bodies are PostgREST's own
(`test/spec/Feature/Query/PostGISSpec.hs`, same fixtures), byte for byte: supalite passes the
text Postgres renders through.  PostGIS is created as Supabase has it, in `extensions`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from supalite.config import ApiSettings
from supalite.db.schema_cache import SchemaCache, load_schema_cache
from supalite.gateway import Claims
from supalite.rest.media import Media, negotiate
from supalite.rest.parse import parse_prefer, split_query_string
from supalite.rest.service import RestContext, RestRequest, RestService, _Asked
from supalite.rest.shapes import Rendered, ShapeCache, Template
from tests.rest.conftest import Api, project_with, serving

GEO = "application/geo+json"
GEO_TYPE = "application/geo+json; charset=utf-8"
JS_DIR = Path(__file__).resolve().parent.parent / "compat" / "js"

SCHEMA = """
create extension if not exists postgis with schema extensions;
create table public.shops (
  id int primary key,
  address text,
  shop_geom extensions.geometry(point, 4326)
);
create table public.shop_bles (
  id int primary key,
  name text,
  coords extensions.geometry(point, 4326),
  range_area extensions.geometry(polygon, 4326),
  shop_id int references public.shops (id)
);
create table public.projects (id int primary key, name text);
create table public.sites (id int primary key, name text, geom extensions.geometry(point, 4326));
create function public.get_shop(id int) returns public.shops language sql stable as $$
  select * from public.shops where shops.id = get_shop.id $$;
create function public.shops_west_of(lon float8) returns setof public.shops
language sql stable as $$
  select * from public.shops where extensions.st_x(shop_geom) < lon order by id $$;
create function public.shop_point(id int) returns extensions.geometry language sql stable as $$
  select shop_geom from public.shops where shops.id = shop_point.id $$;
insert into public.shops values
  (1, '1369 Cambridge St', 'SRID=4326;POINT(-71.10044 42.373695)'),
  (2, '757 Massachusetts Ave', 'SRID=4326;POINT(-71.10543 42.366432)'),
  (3, '605 W Kendall St', 'SRID=4326;POINT(-71.081924 42.36437)');
insert into public.shop_bles values
  (1, 'Beacon-1', 'SRID=4326;POINT(-71.10044 42.373695)', 'SRID=4326;POLYGON((
    -71.10045254230499 42.37387083326593, -71.10048070549963 42.37377126199953,
    -71.10039688646793 42.37375838212269, -71.10037006437777 42.37385844878863,
    -71.10045254230499 42.37387083326593))', 1),
  (2, 'Beacon-2', 'SRID=4326;POINT(-71.10044 42.373695)', 'SRID=4326;POLYGON((
    -71.10034391283989 42.37385299961788, -71.10036939382553 42.373756895982865,
    -71.1002916097641 42.373745997623224, -71.1002641171217 42.37384408279195,
    -71.10034391283989 42.37385299961788))', 1);
insert into public.projects values (1, 'Windmill'), (2, 'Lighthouse');
"""

# The same kind of schema without PostGIS (a plain Postgres `point` is no geometry).
BARE_SCHEMA = """
create table public.spots (id int primary key, name text, at point);
insert into public.spots values (1, 'quay', '(1,2)');
"""


def _feature(geometry: str, properties: str) -> str:
    """A Feature as PostGIS's ST_AsGeoJSON(record) writes it."""
    return f'{{"type": "Feature", "geometry": {geometry}, "properties": {properties}}}'


def _collection(*features: str) -> str:
    """The FeatureCollection as json_build_object writes it around json_agg's array."""
    return f'{{"type" : "FeatureCollection", "features" : [{", ".join(features)}]}}'


SHOP = {
    1: _feature('{"type":"Point","coordinates":[-71.10044,42.373695]}',
                '{"id": 1, "address": "1369 Cambridge St"}'),
    2: _feature('{"type":"Point","coordinates":[-71.10543,42.366432]}',
                '{"id": 2, "address": "757 Massachusetts Ave"}'),
    3: _feature('{"type":"Point","coordinates":[-71.081924,42.36437]}',
                '{"id": 3, "address": "605 W Kendall St"}'),
}  # fmt: skip
POINT_1 = '{"type":"Point","coordinates":[-71.10044,42.373695]}'
NOT_FOUND_HINT = (
    "No function matches the given name and argument types. You might need to add explicit "
    "type casts."
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from serving(project_with(tmp_path_factory.mktemp("geojson"), SCHEMA))


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server whose database has no PostGIS."""
    yield from serving(project_with(tmp_path_factory.mktemp("geojson-bare"), BARE_SCHEMA))


# ------------------------------------------------------------------------------ reads


def test_points_are_features_of_a_collection(api: Api) -> None:
    r = api.get("shops?order=id", Accept=GEO)
    assert r.status_code == 200
    assert r.headers["content-type"] == GEO_TYPE
    assert r.headers["content-range"] == "0-2/*"
    assert r.text == _collection(SHOP[1], SHOP[2], SHOP[3])


def test_select_picks_the_properties(api: Api) -> None:
    r = api.get("shops?select=id,shop_geom&id=eq.1", Accept=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert r.text == _collection(_feature(POINT_1, '{"id": 1}'))


def test_polygons_and_which_geometry_column(api: Api) -> None:
    # With two geometry columns, the one selected is the feature's geometry (PostgREST's
    # "multiple geometry columns" case; PostGIS rounds to 9 decimal digits).
    polygon = (
        '{"type":"Polygon","coordinates":[[[-71.100452542,42.373870833],'
        "[-71.100480705,42.373771262],[-71.100396886,42.373758382],"
        "[-71.100370064,42.373858449],[-71.100452542,42.373870833]]]}"
    )
    r = api.get("shop_bles?select=id,name,range_area&id=eq.1", Accept=GEO)
    assert r.status_code == 200
    assert r.text == _collection(_feature(polygon, '{"id": 1, "name": "Beacon-1"}'))
    r = api.get("shop_bles?select=id,name,coords&id=eq.1", Accept=GEO)
    assert r.text == _collection(_feature(POINT_1, '{"id": 1, "name": "Beacon-1"}'))


def test_an_embed_is_a_property(api: Api) -> None:
    r = api.get("shops?select=*,shop_bles(id,name,coords)&id=eq.1", Accept=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    crs = {"type": "name", "properties": {"name": "EPSG:4326"}}
    coords = {"type": "Point", "crs": crs, "coordinates": [-71.10044, 42.373695]}
    assert r.json() == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-71.10044, 42.373695]},
                "properties": {
                    "id": 1,
                    "address": "1369 Cambridge St",
                    "shop_bles": [
                        {"id": 1, "name": "Beacon-1", "coords": coords},
                        {"id": 2, "name": "Beacon-2", "coords": coords},
                    ],
                },
            }
        ],
    }


def test_filters_order_and_limit(api: Api) -> None:
    r = api.get("shops?address=like.*Ma*&order=id.desc", Accept=GEO)
    assert r.text == _collection(SHOP[2])
    r = api.get("shops?or=(id.eq.1,id.eq.3)&order=id.desc&limit=1", Accept=GEO)
    assert r.text == _collection(SHOP[3])
    r = api.get("shops?id=gt.3", Accept=GEO)  # no rows: an empty collection, not `[]`
    assert r.status_code == 200 and r.text == _collection()
    assert r.headers["content-range"] == "*/*"


def test_counts(api: Api) -> None:
    r = api.get("shops?order=id&limit=1", Accept=GEO, Prefer="count=exact")
    assert r.status_code == 206
    assert r.headers["content-range"] == "0-0/3"
    assert r.text == _collection(SHOP[1])
    r = api.get("shops?order=id&offset=1", Accept=GEO, Prefer="count=exact")
    assert r.status_code == 206 and r.headers["content-range"] == "1-2/3"  # not all rows
    assert r.text == _collection(SHOP[2], SHOP[3])


def test_head_renders_no_features(api: Api) -> None:
    r = api.request("HEAD", "shops", Accept=GEO, Prefer="count=exact")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == GEO_TYPE
    assert r.headers["content-range"] == "0-2/3"
    # As PostgREST (no aggregate on HEAD), a HEAD never renders features, so a table
    # without a geometry column answers it where its GET fails.
    r = api.request("HEAD", "projects", Accept=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert api.get("projects", Accept=GEO).status_code == 400


def test_a_table_without_geometry_is_postgis_error(api: Api) -> None:
    r = api.get("projects", Accept=GEO)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "code": "22023",
        "details": None,
        "hint": None,
        "message": "geometry column is missing",
    }
    # With no row to render, there is nothing to refuse.
    assert api.get("projects?id=eq.9", Accept=GEO).text == _collection()


def test_the_first_acceptable_entry_wins(api: Api) -> None:
    # Singular and GeoJSON are two representations, never combined: the first listed serves.
    r = api.get("shops?id=eq.1", Accept=f"application/vnd.pgrst.object+json, {GEO}")
    assert r.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert r.json()["address"] == "1369 Cambridge St"
    r = api.get("shops?order=id", Accept=f"{GEO}, application/vnd.pgrst.object+json")
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE  # no PGRST116
    assert r.text == _collection(SHOP[1], SHOP[2], SHOP[3])
    r = api.get("shops?order=id", Accept=f"text/xml, {GEO}")
    assert r.text == _collection(SHOP[1], SHOP[2], SHOP[3])
    # The JSON representation of a geometry is still PostGIS's GeoJSON geometry (with its crs).
    r = api.get("shops?id=eq.1")
    assert r.json()[0]["shop_geom"]["crs"] == {"type": "name", "properties": {"name": "EPSG:4326"}}


def test_not_acceptable(api: Api) -> None:
    # A plan of the GeoJSON statement, with plans off (the default): PostgREST's 406.
    plan = f'application/vnd.pgrst.plan+json; for="{GEO}"'
    r = api.get("shops", Accept=plan)
    assert r.status_code == 406
    assert r.json() == {
        "code": "PGRST107",
        "details": None,
        "hint": None,
        "message": f"None of these media types are available: {plan}",
    }
    # Singular GeoJSON is not a thing: the object media type refuses three rows as ever.
    r = api.get("shops", Accept="application/vnd.pgrst.object+json")
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    # With plans on, the plan's `for` may name GeoJSON (what negotiation gives the service).
    media, explained = negotiate(plan, plan_enabled=True)
    assert media == "geojson" and explained is not None
    assert explained.content_type == f"{plan}; charset=utf-8"


# ------------------------------------------------------------------------------ rpc


def test_rpc_returning_a_row_or_rows(api: Api) -> None:
    r = api.get("rpc/get_shop?id=1", Accept=GEO)  # one row, not SETOF: still a collection
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert r.text == _collection(SHOP[1])
    r = api.request("POST", "rpc/shops_west_of", json={"lon": -71.09}, Accept=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert r.headers["content-range"] == "0-1/*"
    assert r.text == _collection(SHOP[1], SHOP[2])
    r = api.get("rpc/shops_west_of?lon=-71.09&select=id,shop_geom&id=eq.2", Accept=GEO)
    assert r.text == _collection(_feature('{"type":"Point","coordinates":[-71.10543,42.366432]}',
                                          '{"id": 2}'))  # fmt: skip
    r = api.request("HEAD", "rpc/shops_west_of?lon=-71.09", Accept=GEO, Prefer="count=exact")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-range"] == "0-1/2"


def test_rpc_returning_a_geometry(api: Api) -> None:
    # A scalar is rendered as PostgREST renders it: its row (`pgrst_scalar`) as the feature.
    r = api.get("rpc/shop_point?id=1", Accept=GEO)
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert r.text == _collection(_feature(POINT_1, "{}"))
    assert api.get("rpc/shop_point?id=1").json()["type"] == "Point"  # JSON is unchanged


# ------------------------------------------------------------------------------ writes


def test_writes_return_their_representation_as_geojson(api: Api) -> None:
    site = '{"type":"Point","coordinates":[-71.11834,42.373238]}'
    moved = '{"type":"Point","coordinates":[1,2]}'
    rep = {"Accept": GEO, "Prefer": "return=representation"}
    r = api.request("POST", "sites", "service", json={"id": 1, "name": "Mass Ave",
                    "geom": "SRID=4326;POINT(-71.11834 42.373238)"}, **rep)  # fmt: skip
    assert r.status_code == 201 and r.headers["content-type"] == GEO_TYPE
    assert r.text == _collection(_feature(site, '{"id": 1, "name": "Mass Ave"}'))
    r = api.request("PATCH", "sites?id=eq.1", "service", json={"name": "Massachusetts Ave"}, **rep)
    assert r.status_code == 200
    assert r.text == _collection(_feature(site, '{"id": 1, "name": "Massachusetts Ave"}'))
    put = {"id": 1, "name": "moved", "geom": "SRID=4326;POINT(1 2)"}
    r = api.request("PUT", "sites?id=eq.1", "service", json=put, **rep)
    assert r.status_code == 200 and r.text == _collection(
        _feature(moved, '{"id": 1, "name": "moved"}')
    )
    r = api.request("POST", "sites?select=name", "service", json={"id": 2, "name": "no geometry"},
                    **rep)  # fmt: skip
    assert r.status_code == 400 and r.json()["message"] == "geometry column is missing"
    assert api.get("sites?id=eq.2").json() == []  # refused with its representation: not written
    # Without a representation no feature is rendered, so the rows need no geometry.
    r = api.request("POST", "sites", "service", json={"id": 2, "name": "no geometry"}, Accept=GEO)
    assert r.status_code == 201 and r.content == b""
    r = api.request("POST", "sites", "service", json={"id": 3, "name": "three"}, Accept=GEO,
                    Prefer="return=headers-only")  # fmt: skip
    assert r.status_code == 201 and r.headers["location"] == "/sites?id=eq.3"
    r = api.request("DELETE", "sites?id=eq.1", "service", **rep)
    assert r.status_code == 200 and r.text == _collection(
        _feature(moved, '{"id": 1, "name": "moved"}')
    )
    assert [s["id"] for s in api.get("sites?order=id").json()] == [2, 3]


# ------------------------------------------------------------------------------ without PostGIS


def test_without_postgis(bare: Api) -> None:
    # PostgREST offers GeoJSON whether PostGIS is there or not; its statement then names a
    # function that does not exist: Postgres's 42883, which PostgREST answers with 404.
    r = bare.get("spots", Accept=GEO)
    assert r.status_code == 404
    assert r.json() == {
        "code": "42883",
        "details": None,
        "hint": NOT_FOUND_HINT,
        "message": "function st_asgeojson(record) does not exist",
    }
    r = bare.request("HEAD", "spots", Accept=GEO)  # nothing rendered, nothing missing
    assert r.status_code == 200 and r.headers["content-type"] == GEO_TYPE
    assert bare.get("spots").json() == [{"id": 1, "name": "quay", "at": "(1,2)"}]


# ------------------------------------------------------------------------------ shapes


def test_shapes_are_kept_per_media_type(api: Api) -> None:
    # Over the live server: a GeoJSON read of one shape, then another value, then JSON.
    for i in (1, 2, 3):
        assert api.get(f"shops?id=eq.{i}", Accept=GEO).text == _collection(SHOP[i])
    assert api.get("shops?id=eq.2").json()[0]["address"] == "757 Massachusetts Ave"
    assert api.get("shops?id=eq.3", Accept=GEO).text == _collection(SHOP[3])

    # In the service, over this database's schema cache: the second value is filled into the
    # template the first made, and JSON of the same shape has a template of its own.
    async def load() -> SchemaCache:
        conn = await asyncpg.connect(api.server.info["DB URL"])
        try:
            return await load_schema_cache(conn, ("public",))
        finally:
            await conn.close()

    cache = asyncio.run(load())
    shapes = ShapeCache()
    settings = ApiSettings(schemas=("public",))
    svc = RestService(RestContext(None, cache, settings, shapes))  # type: ignore[arg-type]

    def shaped(qs: str, media: Media) -> Rendered:
        req = RestRequest(method="GET", resource="shops", rpc=False, query_string=qs.encode(),
                          headers={}, body=b"", claims=Claims("anon", {"role": "anon"}),
                          path="/rest/v1/shops")  # fmt: skip
        a = _Asked(req, "public", parse_prefer([]), media, None, ())
        items = split_query_string(req.query_string)
        got = svc._shaped_read(a, items)
        assert got is not None and got == svc._render_items(a, items)  # as rendering gives
        return got

    one = shaped("id=eq.1", "geojson")
    two = shaped("id=eq.2", "geojson")
    assert "ST_AsGeoJSON" in one.statements[0]
    assert one.statements == two.statements
    assert "1" in one.params[0] and "2" in two.params[0]
    plain = shaped("id=eq.2", "json")
    assert "ST_AsGeoJSON" not in plain.statements[0]
    templates = list(shapes._templates.values())
    assert len(templates) == 2 and all(isinstance(t, Template) for t in templates)


# ------------------------------------------------------------------------------ supabase-js

JS = """
import { createClient } from '@supabase/supabase-js'
import ws from 'ws'
const client = createClient(process.env.URL, process.env.KEY, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
})
const pick = ({ status, data, count, error }) => ({ status, data, count, error })
const out = {
  read: pick(await client.from('shops').select('id,shop_geom').eq('id', 1).geojson()),
  head: pick(await client.from('shops').select('*', { count: 'exact', head: true }).geojson()),
  rpc: pick(await client.rpc('get_shop', { id: 2 }).geojson()),
  missing: pick(await client.from('projects').select().geojson()),
}
console.log(JSON.stringify(out))
"""


def test_supabase_js_geojson(api: Api) -> None:
    node = shutil.which("node")
    assert node, "node is not installed; the supabase-js check needs it"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir(), (
        "@supabase/supabase-js is not installed: run `make test-deps`"
    )
    env = {"URL": api.server.url, "KEY": api.server.anon_key, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([node, "--input-type=module", "-e", JS], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    point = json.loads(POINT_1)
    assert out["read"] == {
        "status": 200,
        "data": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": point, "properties": {"id": 1}}]},
        "count": None,
        "error": None,
    }  # fmt: skip
    assert out["head"] == {"status": 200, "data": None, "count": 3, "error": None}
    assert out["rpc"]["data"]["features"][0]["properties"] == {
        "id": 2,
        "address": "757 Massachusetts Ave",
    }
    assert out["missing"]["status"] == 400
    assert out["missing"]["error"]["message"] == "geometry column is missing"
