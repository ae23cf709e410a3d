"""Ids from clients: one spelling per object. Found from outside: deletePackage(packageId: " 17") deleted
package 17, and deleteRouter(routerId: "٣") (an Arabic-Indic three) reached router 3."""

from __future__ import annotations

import pytest

from project.ids import as_pk


@pytest.mark.parametrize("raw", ["1", "17", 42, "9223372036854775807"])
def test_plain_digits_are_ids(raw):
    assert as_pk(raw) == int(raw)


@pytest.mark.parametrize(
    "raw", [" 17", "17 ", "+17", "1_7", "٣", "１７", "0", "-1", "", None, "9223372036854775808", "1e3"]
)
def test_any_other_spelling_names_nothing(raw):
    assert as_pk(raw) is None


@pytest.mark.django_db
def test_the_payments_filter_takes_no_other_spelling_of_a_router_id(gql, operator):
    """`payments(filters: {routerId})` parsed ids on its own with `str.isdigit`, which takes "٣" for 3."""
    router = operator.add_router()
    package = operator.add_package(router)
    operator.add_paid_payment(router, package)
    arabic = str(router.pk).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    query = "query($r: ID) { payments(filters: {routerId: $r}) { totalCount } }"
    assert gql(query, {"r": str(router.pk)}, **operator.auth)["data"]["payments"]["totalCount"] == 1
    assert gql(query, {"r": arabic}, **operator.auth)["data"]["payments"]["totalCount"] == 0
