"""What a chat request asks for (`DrawJob`, and the commands' presets) and how it ends
(`DrawOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..core.coerce import coerce_bool, coerce_text
from ..imaging.outgoing import Outgoing
from ..imaging.references import References
from ..openrouter.capabilities import ResolvedImageOptions
from ..ttp import GenerationResult

if TYPE_CHECKING:
    from .commands import DrawArgument


@dataclass(frozen=True)
class DrawJob:
    """What one chat request asks for, before translation.

    `prompt` is the user's own text (translated when it holds CJK). A `template` wraps the
    translated text into a fixed English prompt (`{details}` marks where it goes), so presets
    need no user text at all.
    """

    prompt: str
    template: str | None = None
    # Send the pictures of the message (quoted message, merged forwards) and the avatars of the
    # people it @-mentions as references.
    use_images: bool = True
    use_sender_avatar: bool = False  # the requester asked for their own avatar as a reference
    asked_for_images: bool = False  # the chat model said explicitly that it wants references
    # Commands that only make sense with an image (edit, figure); without one in the message
    # they go on from the last picture of the conversation (utils/chat/memory.py).
    needs_image: bool = False
    # The chat model said to go on from the last picture of the conversation: it becomes the
    # first reference (or the history, for a model that keeps turns).
    continue_last: bool = False
    aspect_ratio: str = ""  # '' = the configured default
    image_size: str = ""  # '' = the configured default ("1K", "2K", "4K", any case)
    action: str = "draw"  # what the progress message names: "draw", "edit" or "figure"

    def render(self, details: str) -> str:
        if self.template is None:
            return details
        extra = f" Additional details from the user: {details}" if details else ""
        return self.template.format(details=extra).strip()


@dataclass(frozen=True)
class DrawOutcome:
    """A request's end as data: the result (images already sent), or the failure; worded in
    the request's language at the edge (utils/chat/texts/replies.py)."""

    result: GenerationResult | None
    # Why it failed (result None), or why the pictures made were not sent (undelivered).
    error: BaseException | None = None
    # The NapCat push failed and the pictures went out directly instead.
    push_fell_back: bool = False
    # A re-encode for delivery failed and the original went out instead.
    reencode_failed: bool = False
    references: References = field(default_factory=References)
    # The picture was made (and paid for) but could not be sent: never draw it again.
    undelivered: bool = False
    # The model asked for reference pictures and the message held none.
    no_reference_found: bool = False
    # The size and ratio sent, and what had to change to fit the model.
    options: ResolvedImageOptions | None = None
    # Each picture as it went out (re-encoded when above send_image_max_mb).
    outgoing: tuple[Outgoing, ...] = ()
    # Whether the originals of re-encoded pictures went out as files (None: not asked for).
    originals_sent: bool | None = None
    # Remembered pictures of the conversation the request went on from (0: none), and whether
    # they went as the previous turn's history rather than as references.
    continued: int = 0
    continued_as_history: bool = False
    # It was to go on from the last picture and the conversation has none (or it expired).
    nothing_remembered: bool = False


def tool_job(
    description: object,
    use_reference_images: object,
    aspect_ratio: object,
    image_size: object,
    use_sender_avatar: object,
    continue_last_picture: object = None,
) -> DrawJob:
    """The job of one tool call, from arguments as chat models send them (booleans as text,
    None for "not given")."""
    use_images = coerce_bool(use_reference_images, default=True)
    return DrawJob(
        prompt=coerce_text(description),
        use_images=use_images,
        asked_for_images=use_images and use_reference_images is not None,
        aspect_ratio=coerce_text(aspect_ratio),
        image_size=coerce_text(image_size),
        use_sender_avatar=coerce_bool(use_sender_avatar, default=False),
        continue_last=coerce_bool(continue_last_picture, default=False),
    )


FIGURE_TEMPLATE = (
    "Use the main character or subject of the attached image and create a photorealistic "
    "photograph of it as a 1/7 scale commercial collectible figure. The figure is made of "
    "painted PVC with crisp sculpted details, faithful to the subject's face, hairstyle, "
    "outfit, colours and pose. It stands on a round, clear acrylic display base on a wooden "
    "desk. Behind it sits the figure's retail box with the same character art printed on it, "
    "and a computer monitor shows the figure's 3D sculpting software. Soft studio lighting, "
    "shallow depth of field, realistic reflections, high-end product photography.{details}"
)


def edit_job(prompt: str, *, use_sender_avatar: bool = False) -> DrawJob:
    return DrawJob(
        prompt=prompt, needs_image=True, action="edit", use_sender_avatar=use_sender_avatar
    )


def figure_job(extra: str, *, use_sender_avatar: bool = False) -> DrawJob:
    return DrawJob(
        prompt=extra,
        template=FIGURE_TEMPLATE,
        needs_image=True,
        action="figure",
        use_sender_avatar=use_sender_avatar,
    )


def with_options(job: DrawJob, argument: DrawArgument) -> DrawJob:
    """A command's job with the size and ratio its text named."""
    return replace(job, image_size=argument.image_size, aspect_ratio=argument.aspect_ratio)
