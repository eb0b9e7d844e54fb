"""Record shapes of the raw sources: grouped (one prompt per line), flat (one candidate
per line), and OpenAI batch requests/responses. Pure dict builders; files are the writers' job.
"""

from __future__ import annotations

import json
import random
from typing import Any

from .candidates import Candidate

BATCH_MODEL = "demo-r1"
JUDGE_MODEL = "demo-v3-judge"


def completion_text(c: Candidate) -> str:
    """``<think>\\n{cot}\\n</think>\\n\\n{answer}``, or the defective variant the candidate carries."""
    parts = c.reasoning_parts
    if c.finish_reason == "length":
        return "<think>\n" + parts[0]  # cut by the length limit: the block never closes
    if c.think == "double":
        body = f"<think>\n{parts[0]}\n</think>\n\n<think>\n{parts[1]}\n</think>"
    elif c.think == "no_open":
        body = f"{parts[0]}\n</think>"
    else:
        body = f"<think>\n{parts[0]}\n</think>"
    return f"{body}\n\n{c.answer}" if c.answer else body


def grouped_record(uuid: int | str, problem: str, answer: Any, candidates: list[Candidate],
                   source_dataset: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "problem": problem,
        "answer": answer,
        "generations": [completion_text(c) for c in candidates],
        "finish_reasons": [c.finish_reason for c in candidates],
        "source_dataset": source_dataset,
    }


def flat_record(task_id: str, sample_index: int, prompt: str, c: Candidate) -> dict[str, Any]:
    # Test counts are not here: the sandbox writes them to its own files (sandbox_result).
    return {
        "task_id": task_id,
        "sample_index": sample_index,
        "messages": [{"role": "user", "content": prompt}],
        "completion": completion_text(c),
        "finish_reason": c.finish_reason,
    }


def sandbox_result(task_id: str, sample_index: int, passed: int, total: int, status: str,
                   runtime_ms: int) -> dict[str, Any]:
    """One line of a code sandbox's results file, keyed like the generation it ran."""
    return {
        "task_id": task_id,
        "sample_index": sample_index,
        "status": status,
        "tests_passed": passed,
        "tests_total": total,
        "runtime_ms": runtime_ms,
    }


def batch_request(custom_id: str, prompt: str, n: int, domain: str, reference: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": BATCH_MODEL,
            "n": n,
            "messages": [{"role": "user", "content": prompt}],
            "metadata": {"domain": domain, "reference_answer": reference},
        },
    }


def _batch_message(c: Candidate) -> tuple[str, str]:
    """(content, reasoning_content): the API separates the reasoning, so defects move into content."""
    parts = c.reasoning_parts
    if c.think == "double":
        return f"<think>\n{parts[1]}\n</think>\n\n{c.answer}", parts[0]
    if c.think == "no_open":
        return f"</think>\n\n{c.answer}", parts[0]
    return c.answer, parts[0]


def _hex(rng: random.Random, bits: int = 96) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def batch_response(rng: random.Random, custom_id: str, prompt: str,
                   candidates: list[Candidate]) -> dict[str, Any]:
    choices = []
    completion_tokens = 0
    for index, c in enumerate(candidates):
        content, reasoning = _batch_message(c)
        completion_tokens += (len(content) + len(reasoning)) // 4 + 1
        message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
        choices.append({"index": index, "message": message, "finish_reason": c.finish_reason})
    prompt_tokens = len(prompt) // 4 + 8
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    body = {"id": f"chatcmpl-{_hex(rng)}", "model": BATCH_MODEL, "choices": choices, "usage": usage}
    return {"id": f"batch_req_{_hex(rng)}", "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": f"req_{_hex(rng)}", "body": body}, "error": None}


def batch_error(rng: random.Random, custom_id: str) -> dict[str, Any]:
    message = rng.choice(("The server had an error while processing your request.",
                          "Request timed out after 600 seconds.", "Upstream worker crashed."))
    return {"id": f"batch_req_{_hex(rng)}", "custom_id": custom_id, "response": None,
            "error": {"code": "server_error", "message": message}}


def judge_reply(rng: random.Random, score: int, analysis: str) -> str:
    """A DeepSeek-V3-style generative-reward reply: a JSON verdict, bare, fenced, or after a preamble."""
    body = json.dumps({"analysis": analysis, "score": score}, ensure_ascii=False)
    form = rng.random()
    if form < 0.4:
        return f"```json\n{body}\n```"
    if form < 0.7:
        return f"Let me assess the response against the request.\n\n{body}"
    return body


def judge_output(rng: random.Random, custom_id: str, reply: str) -> dict[str, Any]:
    """One line of an OpenAI-batch output file from a judge run (the shape ``batch_response`` uses)."""
    message = {"role": "assistant", "content": reply}
    usage = {"prompt_tokens": 600, "completion_tokens": len(reply) // 4 + 1, "total_tokens": 601 + len(reply) // 4}
    body = {"id": f"chatcmpl-{_hex(rng)}", "model": JUDGE_MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
    return {"id": f"batch_req_{_hex(rng)}", "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": f"req_{_hex(rng)}", "body": body}, "error": None}
