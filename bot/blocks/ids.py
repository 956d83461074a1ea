"""Every action_id, block_id and callback_id Threadline's Block Kit uses, in one place.

Handlers register on these and builders emit them; a rename here renames both.
"""

TAKE_OVER = "conversation.take_over"
RESUME_AI = "conversation.resume_ai"
MANUAL_ONLY = "conversation.manual_only"
ASSIGN = "conversation.assign"
EDIT_TAGS = "conversation.edit_tags"
CLOSE = "conversation.close"
REOPEN = "conversation.reopen"
VIEW_LEAD = "conversation.view_lead"
RETRY_DELIVERY = "message.retry_delivery"

CARD_ACTIONS_BLOCK = "card.actions"
CARD_ASSIGN_BLOCK = "card.assign"

TAGS_MODAL = "tags.modal"
EXISTING_TAGS_BLOCK = "tags.existing"
EXISTING_TAGS_ACTION = "tags.existing.select"
NEW_TAGS_BLOCK = "tags.new"
NEW_TAGS_ACTION = "tags.new.input"

LEAD_MODAL = "lead.modal"
