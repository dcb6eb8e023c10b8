"""French text to index terms, the query language, and highlighted snippets.

Both engines see the same words: accents are folded before stemming, so "crémeux", "cremeux"
and "crémeuses" meet on one term whichever way a user types them. SQLite FTS5 gets terms
stemmed here (Snowball French, the algorithm PostgreSQL's `french` configuration runs);
PostgreSQL gets the folded words and stems them itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer

from domain.errors import InvalidInput

#: Longest query accepted: a search box, not a document.
MAX_QUERY_CHARS = 500
MAX_QUERY_TERMS = 32

_WORD = re.compile(r"\w+", re.UNICODE)
_PIECES = re.compile(r"\w+|\W+", re.UNICODE)
_TOKEN = re.compile(r'"|\(|\)|-?[^\s"()]+')
_STEMMER = Stemmer.Stemmer("french")
# The words PostgreSQL's french dictionary drops: indexing them would only slow FTS5 down.
STOPWORDS = frozenset(
    "a au aux avec ce ces dans de des du elle en et eux il je la le les leur lui ma mais me "
    "meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te "
    "tes toi ton tu un une vos votre vous c d j l m n s t y est sont ete etre".split()
)


class QuerySyntaxError(InvalidInput):
    """The search query cannot be parsed (unbalanced quote, nothing to search for...)."""


def _fold_slowly(text: str) -> str:
    text = text.lower().replace("œ", "oe").replace("æ", "ae")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


# The Latin letters French text uses, folded once: a document's few accented letters are
# replaced one by one instead of decomposing it whole (most of a rebuild's time otherwise).
_LATIN_FOLDS = {
    chr(code): _fold_slowly(chr(code))
    for code in range(0xC0, 0x250)
    if _fold_slowly(chr(code)).isascii() and _fold_slowly(chr(code)) != chr(code).lower()
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _latin_fold(match: re.Match[str]) -> str:
    return _LATIN_FOLDS.get(match[0], match[0])


def fold(text: str) -> str:
    """Lower case without accents or ligatures: "Œuf Crémeux" -> "oeuf cremeux"."""
    text = text.lower()
    if text.isascii():
        return text
    text = _NON_ASCII.sub(_latin_fold, text)
    # Anything else (other scripts, compatibility forms) takes the general path.
    return text if text.isascii() else _fold_slowly(text)


def words(text: str) -> list[str]:
    """The folded words of `text`, stopwords kept (they matter for highlighting positions)."""
    return _WORD.findall(fold(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball French stem of one folded word (cached: a corpus reuses few words)."""
    return str(_STEMMER.stemWord(word))


class _TermOf(dict[str, str]):
    """Folded word -> its FTS5 term ("" for a stopword), filled on first sight. A corpus
    reuses few words, so a rebuild looks most of them up here instead of stemming them."""

    def __missing__(self, word: str) -> str:
        term = "" if word in STOPWORDS else stem(word)
        if len(self) < 200_000:
            self[word] = term
        return term


_TERM_OF = _TermOf()


def terms(text: str) -> str:
    """What FTS5 indexes for `text`: stems of the folded words, stopwords left out."""
    return " ".join(filter(None, map(_TERM_OF.__getitem__, words(text))))


@dataclass(frozen=True)
class Clause:
    """One required (or excluded) unit: a word, a phrase, or alternatives joined by OR.

    Words are folded but not stemmed: FTS5 gets them stemmed here (`stems`), PostgreSQL stems
    them with its own `french` dictionary. Phrases keep their stopwords, which PostgreSQL
    counts in positions; FTS5 never indexed them (`terms`), so `stems` leaves them out.
    """

    alternatives: tuple[tuple[str, ...], ...]
    negated: bool = False
    prefix: bool = False

    def stems(self) -> tuple[tuple[str, ...], ...]:
        if self.prefix:
            return self.alternatives
        return tuple(
            tuple(stem(word) for word in words if word not in STOPWORDS)
            for words in self.alternatives
        )


@dataclass(frozen=True)
class Query:
    """A parsed query: every clause must hold (AND), negated ones must not."""

    clauses: tuple[Clause, ...]
    #: What the snippet marks: whole stems, and prefixes typed with a trailing `*`.
    stems: frozenset[str] = field(default_factory=frozenset)
    prefixes: frozenset[str] = field(default_factory=frozenset)


def parse(text: str) -> Query:
    """Parse the query language: words (all required), "a phrase", a OR b, -excluded, pref*.

    Raises QuerySyntaxError with a message a user can act on; never lets an engine see
    unparsed input, so an engine syntax error cannot become a 500.
    """
    text = text.strip()
    if not text:
        raise QuerySyntaxError("the query is empty: give at least one word")
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    if text.count('"') % 2:
        raise QuerySyntaxError('unbalanced quote: close the phrase with a second "')
    if "(" in text or ")" in text:
        raise QuerySyntaxError('parentheses are not supported: use a OR b, -word, "a phrase"')
    units = _units(text)
    clauses: list[Clause] = []
    pending_or = False
    for unit in units:
        if unit == ("OR",):
            if not clauses or pending_or or clauses[-1].negated:
                raise QuerySyntaxError("OR needs a word on each side")
            pending_or = True
            continue
        clause = _clause(unit)
        if clause is None:
            continue
        if pending_or:
            previous = clauses.pop()
            if clause.negated:
                raise QuerySyntaxError("OR cannot join an excluded word")
            clause = Clause(previous.alternatives + clause.alternatives, prefix=False)
            pending_or = False
        clauses.append(clause)
    if pending_or:
        raise QuerySyntaxError("OR needs a word on each side")
    if not any(not clause.negated for clause in clauses):
        raise QuerySyntaxError("nothing to search for: give at least one word that is not excluded")
    if sum(len(alt) for clause in clauses for alt in clause.alternatives) > MAX_QUERY_TERMS:
        raise QuerySyntaxError(f"too many words: at most {MAX_QUERY_TERMS}")
    wanted = [clause for clause in clauses if not clause.negated]
    stems = {w for c in wanted if not c.prefix for alt in c.stems() for w in alt}
    prefixes = {w for c in wanted if c.prefix for alt in c.alternatives for w in alt}
    return Query(tuple(clauses), frozenset(stems), frozenset(prefixes))


def _units(text: str) -> list[tuple[str, ...]]:
    """Split into ("OR",), ("-", word...) / ("", word...) units; phrases stay one unit."""
    units: list[tuple[str, ...]] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        negated = char == "-"
        start = position + 1 if negated else position
        if start < len(text) and text[start] == '"':
            end = text.index('"', start + 1)
            units.append(("-" if negated else "", "phrase", text[start + 1 : end]))
            position = end + 1
            continue
        end = start
        while end < len(text) and not text[end].isspace() and text[end] != '"':
            end += 1
        token = text[start:end]
        units.append(
            ("OR",) if token == "OR" and not negated else ("-" if negated else "", "word", token)
        )
        position = end
    return units


def _clause(unit: tuple[str, ...]) -> Clause | None:
    sign, kind, raw = unit
    prefix = kind == "word" and raw.endswith("*")
    found = tuple(words(raw))
    if all(word in STOPWORDS for word in found):
        return None
    if kind == "word":
        found = tuple(word for word in found if word not in STOPWORDS)
    if kind == "word" and len(found) > 1:
        # "crème-brûlée" or "l'huile": the pieces of one token read as a phrase.
        kind = "phrase"
    if prefix and len(found) > 1:
        prefix = False
    # A prefix is matched as typed (folded): stemming "cremeu" would cut it somewhere else.
    return Clause((found,), negated=sign == "-", prefix=prefix)


def snippet(text: str, query: Query, *, width: int = 24, mark: str = "**") -> str:
    """About `width` words of `text` around its first matching word, matches wrapped in `mark`.

    Matching is on folded stems, so the snippet marks "Crémeuses" for a query "cremeux".
    """
    pieces = _PIECES.findall(text)
    # Runs of word and other characters alternate: the words are every other piece.
    words_from = 0 if pieces and (pieces[0][:1].isalnum() or pieces[0][:1] == "_") else 1
    stems, prefixes = query.stems, query.prefixes
    hits: list[int] = []
    for index in range(words_from, len(pieces), 2):
        folded, stemmed = _folded_stem(pieces[index])
        if stemmed in stems or (prefixes and any(map(folded.startswith, prefixes))):
            hits.append(index)
    first = hits[0] if hits else 0
    start = max(0, first - width)
    end = min(len(pieces), first + width * 2)
    shown = pieces[start:end]
    for index in hits:
        if index < end:
            shown[index - start] = f"{mark}{pieces[index]}{mark}"
    out = "".join(shown)
    return ("…" if start else "") + out.strip() + ("…" if end < len(pieces) else "")


@lru_cache(maxsize=100_000)
def _folded_stem(word: str) -> tuple[str, str]:
    """A word as typed -> (folded, its stem): every page's snippets meet the same words."""
    folded = fold(word)
    return folded, stem(folded)
