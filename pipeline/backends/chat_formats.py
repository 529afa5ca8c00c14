"""Chat formats for raw-completion APIs (`/completion`, `/api/v1/generate`).

Those endpoints take raw text, so pipe wraps system and user text in the model's own chat
format and adds the format's end-of-turn strings to `stop`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatFormat:
    name: str
    with_system: str
    without_system: str
    stop: tuple[str, ...]

    def wrap(self, user: str, system: str = "") -> str:
        if system:
            return self.with_system.format(system=system, user=user)
        return self.without_system.format(user=user)


FORMATS: dict[str, ChatFormat] = {
    f.name: f
    for f in [
        ChatFormat(
            "chatml",
            "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n",
            "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
            ("<|im_end|>", "<|im_start|>"),
        ),
        ChatFormat(
            "llava",
            "{system}\n### User: {user}\n### Assistant:",
            "### User: {user}\n### Assistant:",
            ("</s>", "### User:"),
        ),
        ChatFormat(
            "mistral", "[INST] {system}\n\n{user} [/INST]", "[INST] {user} [/INST]", ("</s>",)
        ),
        ChatFormat(
            "gemma",
            "<start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n",
            "<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n",
            ("<end_of_turn>", "<start_of_turn>"),
        ),
        ChatFormat(
            "llama3",
            "<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            ("<|eot_id|>",),
        ),
        ChatFormat("raw", "{system}\n\n{user}", "{user}", ()),
    ]
}

# Markers that identify a format in a server's chat template (llama.cpp `/props`).
_TEMPLATE_MARKERS = [
    ("<start_of_turn>", "gemma"),
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama3"),
    ("[INST]", "mistral"),
    ("### User", "llava"),
]
# Substrings of model names (koboldcpp `/api/v1/model`, llama.cpp `model_path`).
_NAME_MARKERS = [
    ("gemma", "gemma"),
    ("smollm", "chatml"),
    ("qwen", "chatml"),
    ("hermes", "chatml"),
    ("llava", "llava"),
    ("bakllava", "llava"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
    ("llama-3", "llama3"),
    ("llama3", "llama3"),
]


def guess_format(model: str = "", chat_template: str = "") -> str:
    """The chat format a server's model most likely wants; ChatML when nothing says.

    The model's name wins over the server's chat template: llama.cpp reports a ChatML
    fallback template for models whose GGUF carries none (seen with gemma-3-270m)."""
    lowered = model.lower()
    for marker, name in _NAME_MARKERS:
        if marker in lowered:
            return name
    for marker, name in _TEMPLATE_MARKERS:
        if marker in chat_template:
            return name
    return "chatml"
