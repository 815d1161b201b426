"""Statements run again and again: compiled once per process, planned once per connection.

A worker sending a batch of e-mails runs the same few statements for each one, and every view of
the caseload, a couple's page or a comparison runs the same few reads. Django compiles a
queryset's SQL afresh on every execution (about a millisecond for the reminder's seven-table join,
half a millisecond for most of a page's reads), and it leaves psycopg's prepared statements off, so
PostgreSQL plans each statement afresh each time too (about 0.75 ms for that join, four times what
running it costs). For these statements only:

* ``Query`` compiles a queryset once per process and runs it again with other values for its
  parameters, building the same model instances (``select_related`` objects and annotations
  included) that iterating the queryset would, or the tuples of a ``values_list()``;
* ``cursor()`` is a cursor whose statements PostgreSQL prepares: parsed and planned once per
  connection, then only executed. Web processes keep their connections for a minute
  (``conn_max_age``), so a page's reads are planned once a minute, not once a view.

Both go through Django's cursor wrappers, so query logging, ``connection.execute_wrapper`` and the
tests' query counts see every statement as usual. Everything else in the site is untouched: the
statements a request shapes from what was asked (filters, sort orders, forms) stay Django's.

Prepared statements live in the database session. A pooler in front of PostgreSQL that hands one
session's statements to another (PgBouncer in transaction mode before 1.21) cannot keep them:
``DATABASE_PREPARED_STATEMENTS=false`` turns them off and leaves the compile-once part.
"""

import itertools

from django.conf import settings
from django.db import connections
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # what ModelIterable uses; not in the stubs

_markers = itertools.count(-(2**62), -1)  # parameter values no real query uses


def cursor(using="default"):
    """A cursor (use it in ``with``) whose statements PostgreSQL prepares; a plain one elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django leaves preparing off (None) for poolers' sake, and psycopg then refuses even an
        # explicit prepare. Any number turns it back on: Django's own cursors bind on the client
        # and never prepare, so only this module's statements (prepare=True) are ever prepared.
        raw.prepare_threshold = 2**31
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparingCursor(raw))


def _make_preparing_cursor():
    import psycopg
    from django.db.backends.postgresql.base import CursorMixin

    class PreparingCursor(CursorMixin, psycopg.Cursor):
        """Server-side binding (what ``prepare`` needs), preparing every statement it runs."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

        def _convert_query(self, query, params=None):
            # Kept where Django's query log reads a psycopg cursor's statement (a server-binding
            # cursor does not keep it): the debug log and the tests' query counts show its SQL.
            self._query = super()._convert_query(query, params)
            return self._query

    return PreparingCursor


try:
    _PreparingCursor = _make_preparing_cursor()
except ImportError:  # no psycopg: SQLite only, where cursor() never asks for it
    _PreparingCursor = None


class Query:
    """``Query(lambda reminder: Reminder.objects.filter(pk=reminder))``, then ``query.first(reminder=7)``.

    ``build`` is called once, with a marker value for each named parameter (a 64-bit integer no
    row has: the parameters are ids, compared with big-integer columns);
    the SQL it compiles to is kept, and each call swaps the markers in its parameters for the
    values given. Only values the queryset passes as parameters can change this way: a marker
    that does not show up among the compiled parameters is an error at the first call.

    A list of ids (``couple_id__in=couples``) is a parameter too: ``build`` gets a list of markers
    as long as the list given, and the SQL is compiled once per length (a page's 25 couples, or
    fewer on its last page). ``all()`` gives model instances; ``rows()`` gives the tuples of a
    ``values_list()`` queryset.
    """

    def __init__(self, build, *names):
        self.build = build
        self.names = names
        self._compiled = {}

    def _compile(self, connection, shape):
        markers = {
            name: next(_markers) if length is None else [next(_markers) for _ in range(length)]
            for name, length in zip(self.names, shape, strict=True)
        }
        queryset = self.build(**markers)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots = {}
        for name, marker in markers.items():
            for i, one in enumerate(marker if isinstance(marker, list) else [marker]):
                slots[name, i] = [at for at, value in enumerate(params) if value == one]
                if not slots[name, i]:
                    raise ValueError(f"{name!r} is not a parameter of the compiled query")
        klass_info, select = compiler.klass_info, compiler.select
        if klass_info is not None:  # model instances
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            attnames = [column[0].target.attname for column in select[start:end]]
            order = None
        else:  # values_list(): the named fields in the order asked for, as ValuesListIterable gives them
            start = end = 0
            attnames = []
            query = queryset.query
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
            fields = list(queryset._fields or names)
            order = None if fields == names else [names.index(f) for f in fields]
        compiled = (sql, list(params), slots, compiler, klass_info, select, (start, end), attnames, order)
        self._compiled[connection.alias, connection.vendor, shape] = compiled
        return compiled

    def _run(self, using, values):
        connection = connections[using]
        shape = tuple(len(values[name]) if isinstance(values[name], list | tuple) else None for name in self.names)
        if any(length == 0 for length in shape):
            return None, None  # an empty list matches nothing: no query
        key = connection.alias, connection.vendor, shape
        compiled = self._compiled.get(key) or self._compile(connection, shape)
        sql, params, slots = compiled[:3]
        params = list(params)
        for (name, i), positions in slots.items():
            value = values[name][i] if shape[self.names.index(name)] is not None else values[name]
            for at in positions:
                params[at] = value
        with cursor(using) as c:
            c.execute(sql, params)
            rows = c.fetchall()
        return compiled, rows

    def all(self, using="default", **values):
        """The model instances the queryset would give for these values, as a list."""
        compiled, rows = self._run(using, values)
        if compiled is None:
            return []
        _, _, _, compiler, klass_info, select, (start, end), attnames, _ = compiled
        model = klass_info["model"]
        populators = get_related_populators(klass_info, select, using)
        annotations = compiler.annotation_col_map
        objects = []
        for row in compiler.results_iter(results=[rows]):
            obj = model.from_db(using, attnames, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for attr, position in annotations.items():
                setattr(obj, attr, row[position])
            objects.append(obj)
        return objects

    def rows(self, using="default", **values):
        """The tuples a ``values_list()`` queryset would give for these values, as a list."""
        compiled, rows = self._run(using, values)
        if compiled is None:
            return []
        compiler, order = compiled[3], compiled[8]
        found = compiler.results_iter(results=[rows])
        if order is None:
            return [tuple(row) for row in found]
        return [tuple(row[i] for i in order) for row in found]

    def first(self, using="default", **values):
        """The first instance for these values, or None (the queryset decides the order, if any)."""
        found = self.all(using, **values)
        return found[0] if found else None


def prefetched(obj, name, objects):
    """Hand ``obj`` its related ``name`` as ``prefetch_related`` would leave it: ``obj.<name>.all()``
    then gives ``objects`` without a query (for rows read with ``Query``, which does not prefetch)."""
    queryset = getattr(obj, name).get_queryset()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    if not hasattr(obj, "_prefetched_objects_cache"):
        obj._prefetched_objects_cache = {}
    obj._prefetched_objects_cache[name] = queryset
