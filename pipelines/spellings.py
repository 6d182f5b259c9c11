"""A country code the ``numbers`` section does not strip: subscribers under two spellings.

Shared by ``socialgraph run`` (on every number of the call graph) and ``socialgraph check``
(on the numbers of a sample).
"""

from __future__ import annotations

import numpy as np

from socialgraph.numbers import longer_spellings


def spelling_findings(keys: np.ndarray, sub_keys: np.ndarray, numbers, scale: int | None = None
                      ) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Subscribers' numbers seen among ``keys`` with more digits in front (a country code the
    ``numbers`` section does not strip), and subscribers' numbers that are numbers of ``keys``
    with more digits in front (the table written with the code, the CDRs without), by those
    digits; and the warnings naming the setting when they are more than a few: each such
    person is two nodes, their ties split between them or all on the off-net one.

    ``keys``: the numbers seen (sorted, unique); ``scale``: how many numbers the counts are
    judged against (default the subscribers; a sample passes the numbers it saw). Returns
    ``({"longer_spellings": {...}, "subscribers_with_longer_spellings": {...}}, warnings)``.
    """
    # ours: the subscriber table's numbers, not the on-net flag (home prefixes would make the
    # national spellings of a table written with the code on-net too); theirs: every other number
    keys = np.asarray(keys, np.int64)
    ours = np.sort(np.asarray(sub_keys, np.int64))
    pos = np.minimum(np.searchsorted(ours, keys), max(ours.size - 1, 0))
    theirs = keys[ours[pos] != keys] if ours.size else keys
    empty = {"longer_spellings": {}, "subscribers_with_longer_spellings": {}}
    if ours.size == 0 or theirs.size == 0:
        return empty, []
    # only numbers longer than the other side's usual length can be its spelling with a code in
    # front (and a national number's tail matching a short code by chance is left out)
    usual_ours, usual_theirs = int(np.bincount(ours & 31).argmax()), int(np.bincount(theirs & 31).argmax())
    found = longer_spellings(theirs[(theirs & 31) > usual_ours], ours)
    reverse = longer_spellings(ours[(ours & 31) > usual_theirs], theirs)
    base = ours.size if scale is None else scale
    least = max(10, 0.001 * base)  # below this a count is chance, not a spelling
    out, warnings = {}, []
    for name, where, table, usual in (
            ("longer_spellings", "numbers in the CDRs are subscribers' numbers", found, usual_ours),
            ("subscribers_with_longer_spellings", "subscribers' numbers are numbers in the CDRs", reverse, usual_theirs)):
        out[name] = {lead: count for lead, count in list(table.items())[:5] if count >= least}
        if table:
            lead, count = next(iter(table.items()))
            if count >= max(least, 0.005 * base):
                warnings.append(
                    f"{count} {where} with {lead} in front: the same person under two spellings, their ties split. "
                    f"Set numbers.country_code: '{lead}' and national_length: {usual} in the job config (now "
                    f"{numbers.country_code} / {numbers.national_length})")
    return out, warnings
