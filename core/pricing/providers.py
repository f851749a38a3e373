"""Provider names as spans spell them -> ``genai-prices`` provider ids.

Why a table of our own: the GenAI semconv (``gen_ai.provider.name``), its older ``gen_ai.system``
values and the peers' dialects (OpenLLMetry, OpenLIT, OpenInference) each spell providers their
own way (``aws.bedrock``, ``az.ai.openai``, ``MistralAI``, ``Vertex AI`` ...), and the library's
own provider matching is substring based (``"openai"`` inside ``"azure.ai.openai"`` would pick
OpenAI's prices for an Azure call). Names are compared without case and punctuation, so
``x_ai``, ``x-ai`` and ``xAI`` are one name.
"""

from __future__ import annotations

import re

# A provider we know but the library has no prices for: such calls must not fall back to a
# model-name-only match (IBM's price for a Llama model is not Together's).
NO_LIBRARY_PROVIDER = ""

_COMPACT = re.compile(r"[^a-z0-9]+")


def compact(name: str) -> str:
    """``"Azure.AI OpenAI"`` -> ``"azureaiopenai"``: the key the table below is written in."""
    return _COMPACT.sub("", name.lower())


# compact provider name -> library provider id
LIBRARY_PROVIDERS: dict[str, str] = {
    # gen_ai.provider.name (GenAI semconv) and the older gen_ai.system values
    "openai": "openai",
    "anthropic": "anthropic",
    "awsbedrock": "aws",
    "azureaiopenai": "azure",
    "azureaiinference": "azure",
    "azaiopenai": "azure",
    "azaiinference": "azure",
    "gcpgemini": "google",
    "gcpvertexai": "google",
    "gcpgenai": "google",
    "vertexai": "google",
    "gemini": "google",
    "mistralai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "ibmwatsonxai": NO_LIBRARY_PROVIDER,
    # peers' dialects (OpenLLMetry vendors, OpenLIT systems, OpenInference llm.provider/llm.system)
    "azure": "azure",
    "azureopenai": "azure",
    "bedrock": "aws",
    "awsbedrockruntime": "aws",
    "amazonbedrock": "aws",
    "aws": "aws",
    "google": "google",
    "googlegenai": "google",
    "googleai": "google",
    "googlegenerativeai": "google",
    "mistral": "mistral",
    "together": "together",
    "togetherai": "together",
    "fireworks": "fireworks",
    "fireworksai": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "moonshot": "moonshotai",
    "moonshotai": "moonshotai",
    "novita": "novita",
    "novitaai": "novita",
    "zhipuai": "zhipuai",
    "voyageai": "voyageai",
    "watsonx": NO_LIBRARY_PROVIDER,
    "ollama": NO_LIBRARY_PROVIDER,  # local models: no per-token price to guess
    "vllm": NO_LIBRARY_PROVIDER,
    "sagemaker": NO_LIBRARY_PROVIDER,
    "awssagemaker": NO_LIBRARY_PROVIDER,
    "huggingface": NO_LIBRARY_PROVIDER,
    "replicate": NO_LIBRARY_PROVIDER,
}


def library_provider(name: str | None, known_ids: frozenset[str]) -> str | None:
    """The library's id for ``name``; ``NO_LIBRARY_PROVIDER`` for a provider known to have no
    prices there; ``None`` when the name is empty or unknown (the caller may then match the
    model name alone)."""
    if not name:
        return None
    key = compact(name)
    if not key:
        return None
    mapped = LIBRARY_PROVIDERS.get(key)
    if mapped is not None:
        return mapped
    lowered = name.strip().lower()
    if lowered in known_ids:  # a library id used verbatim ("huggingface_together", "x-ai")
        return lowered
    return None
