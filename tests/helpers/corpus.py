"""A generated text corpus with planted topics, written as a plain text file."""

import random
from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"
FUNCTION_WORDS = ["the", "of", "and", "to"]


def topic_words(num_topics: int = 4, words_per_topic: int = 10) -> list[list[str]]:
    """Letter-only words (the tokeniser splits on anything else), e.g. `topicbword` for topic 1, word 2."""
    return [[f"topic{LETTERS[t]}word{LETTERS[w]}" for w in range(words_per_topic)] for t in range(num_topics)]


def write_topic_corpus(
    path: Path,
    num_sentences: int = 1200,
    sentence_length: int = 12,
    num_topics: int = 4,
    words_per_topic: int = 10,
    function_share: float = 0.3,
    seed: int = 0,
) -> Path:
    """Each line draws one topic and fills itself with that topic's words and a few frequent function words.

    Words of one topic share their contexts and words of different topics never meet, so trained vectors
    must put a word's topic-mates nearest to it; the function words are frequent enough for subsampling to
    matter.
    """
    rng = random.Random(seed)
    topics = topic_words(num_topics, words_per_topic)
    lines = []
    for _ in range(num_sentences):
        topic = rng.choice(topics)
        words = [
            rng.choice(FUNCTION_WORDS) if rng.random() < function_share else rng.choice(topic)
            for _ in range(sentence_length)
        ]
        lines.append(" ".join(words).capitalize() + ".")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
