"""moto_server, handling one request at a time, with two hot spots fixed.

Serialized requests. Under moto's threaded server, DynamoDB
TransactWriteItems is neither atomic nor isolated: it applies its items one
by one while other requests run, and when a transaction is cancelled it
restores a deep copy of the whole table taken when the transaction began,
silently undoing writes that other requests committed in between. Two racing
creates can then both claim one userName, or a committed write can vanish.
Real DynamoDB transactions are serializable. Connections are still accepted
concurrently, but requests are processed under one lock, so every API call
is atomic as it is in AWS (races between the calls of one SCIM request, which
are what the tests exercise, still happen). moto holds the GIL for nearly all
of a request anyway, so this costs little.

Two costs that grow with the table, not with the request (measured: seeding
1,000 users took 382 s, and a 100,000-user benchmark could not finish):

- TransactWriteItems deep-copies every table it names before it starts, to
  roll back on cancellation. Here it keeps an undo log of only the items the
  transaction names instead, and restores those on any failure.
- A base-table Query sorts every item of the table, then keeps the queried
  partition, then walks the partition up to ExclusiveStartKey. Here the
  query sees only its partition, from the start key on, and only the first
  Limit + 1 items when nothing but Limit can end the page early.

Both keep moto's results: the same items, in the same order, with the same
LastEvaluatedKey, and the same cancellation reasons. They rely on moto's
internals, so the moto version is checked at start.

One Secrets Manager answer is corrected to match AWS: when
UpdateSecretVersionStage moves AWSCURRENT, moto leaves its notion of the
"default" version behind, so a later PutSecretValue moves AWSCURRENT off
that stale version only, and two versions end up labelled AWSCURRENT (a
read then returns the older one). In AWS a label is on one version at a
time. Token rotation's compare-and-swap relies on this.

Started by scripts/emulator.sh; takes moto_server's arguments.
"""

import base64
import copy
import decimal
import heapq
import sys
import threading
from operator import attrgetter
from importlib.metadata import version

import moto.dynamodb.models as dynamodb_models
import moto.server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.secretsmanager.models import SecretsManagerBackend

# The internals patched below are those of this series (requirements-dev.txt).
if not version("moto").startswith("5.2."):
    sys.exit(f"moto_server_serialized: written for moto 5.2.x, found {version('moto')}")

_lock = threading.Lock()
_run_simple = moto.server.run_simple


def _serialized(app):
    def handle(environ, start_response):
        with _lock:
            # Produce the whole response inside the lock: WSGI apps may be lazy.
            return list(app(environ, start_response))

    return handle


def _run_simple_serialized(hostname, port, application, *args, **kwargs):
    return _run_simple(hostname, port, _serialized(application), *args, **kwargs)


# --- TransactWriteItems: undo log instead of whole-table copies -------------


class _NoTableCopies:
    """Stands in for the `copy` module inside moto's DynamoDB backend: tables
    are not copied (the undo log below replaces that backup); anything else
    is deep-copied as before."""

    @staticmethod
    def deepcopy(value, *args, **kwargs):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(copy, name)


def _item_key(table, op):
    """The (hash, range) key an operation names, or None if it names none
    (moto then rejects the transaction before changing anything)."""
    attrs = op.get("Key") or op.get("Item") or {}
    hash_value = attrs.get(table.hash_key_attr)
    if hash_value is None:
        return None
    if table.range_key_attr is None:
        return DynamoType(hash_value), None
    range_value = attrs.get(table.range_key_attr)
    if range_value is None:
        return None
    return DynamoType(hash_value), DynamoType(range_value)


def _restore(table, hash_key, range_key, old):
    if old is None:
        table.delete_item(hash_key, range_key)
    elif range_key is None:
        table.items[hash_key] = old
    else:
        table.items[hash_key][range_key] = old


_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items_with_undo_log(self, transact_items):
    undo = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            key = _item_key(table, op) if table is not None else None
        except (AttributeError, StopIteration, TypeError):
            key = None
        if key is not None:
            undo.append((table, *key, copy.deepcopy(table.get_item(*key))))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        # Newest first, so an item named twice ends as it was before.
        for table, hash_key, range_key, old in reversed(undo):
            _restore(table, hash_key, range_key, old)
        raise


# --- Query: read only the queried partition ---------------------------------


def _order(value):
    """DynamoDB's order of key values: numbers by value, strings and binaries
    by their bytes."""
    if value.type == "N":
        return decimal.Decimal(value.value)
    if value.type == "B":
        return base64.b64decode(value.value)
    return value.value.encode("utf-8")


_string_sort_key = attrgetter("range_key.value")


def _ordered_sort_key(item):
    return _order(item.range_key)


class _KeyOnly:
    """The start key, shaped like an item for the sort-key getters."""

    def __init__(self, range_key):
        self.range_key = range_key


_query = Table.query


def _partition_query(
    self,
    hash_key,
    range_comparison,
    range_objs,
    limit,
    exclusive_start_key,
    scan_index_forward,
    projection_expressions,
    index_name=None,
    consistent_read=False,
    filter_expression=None,
    **kwargs,
):
    args = (
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name,
        consistent_read,
        filter_expression,
    )
    if index_name is not None or hash_key is None or self.range_key_attr is None:
        return _query(self, *args, **kwargs)
    # `items` is a defaultdict: `get` does not create the partition.
    partition = (self.items.get(hash_key) or {}).values()
    # Sort keys that are strings (all of ours) compare as they are (code
    # point order is UTF-8 byte order), read by a C-level getter: this runs
    # per item of the partition on every query.
    if self.range_key_type == "S":
        sort_key = _string_sort_key
    else:
        sort_key = _ordered_sort_key
    if scan_index_forward is not False:
        start = (exclusive_start_key or {}).get(self.range_key_attr)
        if start is not None:
            after = sort_key(_KeyOnly(DynamoType(start)))
            partition = [item for item in partition if sort_key(item) > after]
        # Only the Limit can end the page before a range condition, a legacy
        # filter or the size limit does: moto reads one item past it.
        others = {k: v for k, v in kwargs.items() if not k.endswith("_conditions")}
        if limit and not range_comparison and not others:
            partition = heapq.nsmallest(limit + 1, partition, key=sort_key)
    items = sorted(partition, key=sort_key)
    self.all_items = lambda: items
    try:
        return _query(self, *args, **kwargs)
    finally:
        del self.all_items


_update_secret_version_stage = SecretsManagerBackend.update_secret_version_stage


def _update_secret_version_stage_moving_default(
    self, secret_id, version_stage, remove_from_version_id, move_to_version_id
):
    result = _update_secret_version_stage(
        self, secret_id, version_stage, remove_from_version_id, move_to_version_id
    )
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


SecretsManagerBackend.update_secret_version_stage = (
    _update_secret_version_stage_moving_default
)
dynamodb_models.copy = _NoTableCopies()
DynamoDBBackend.transact_write_items = _transact_write_items_with_undo_log
Table.query = _partition_query
moto.server.run_simple = _run_simple_serialized

if __name__ == "__main__":
    sys.exit(moto.server.main())
