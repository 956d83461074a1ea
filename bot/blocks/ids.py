"""Every action_id, block_id and callback_id Threadline's Block Kit uses, in one place.

Builders emit these and handlers register on them, so a rename here renames both. A card button's
`value` is the conversation id as a string; the Retry button's `value` is the message id.
"""

# --- the card's buttons and select (value = str(conversation.id)) ---------------------------------------
TAKE_OVER = "conversation.take_over"
RESUME_AI = "conversation.resume_ai"
MANUAL_ONLY = "conversation.manual_only"
ASSIGN = "conversation.assign"  # users_select: the action carries `selected_user`
EDIT_TAGS = "conversation.edit_tags"  # opens the Tags modal
CLOSE = "conversation.close"
REOPEN = "conversation.reopen"
VIEW_LEAD = "conversation.view_lead"  # opens the lead modal
EDIT_LEAD = "conversation.edit_lead"  # opens the Edit lead modal

CARD_ACTIONS_BLOCK = "card.actions"
CARD_ASSIGN_BLOCK = "card.assign"

# --- a rep's message that did not reach the lead (value = str(message.id)) ------------------------------
RETRY_DELIVERY = "message.retry_delivery"
DELIVERY_FAILURE_BLOCK = "delivery.failure"
# …because the channel's reply window is closed: one button per template (value = JSON
# {"m": the message's id, "n": the template's name, "l": its language}); block ids TEMPLATES_BLOCK.N
SEND_TEMPLATE = "message.send_template"
TEMPLATES_BLOCK = "delivery.templates"

# --- an email shown trimmed in the thread (value = str(message.id)): its whole text in a modal ------------
SHOW_FULL_MESSAGE = "message.show_full"
FULL_MESSAGE_BLOCK = "message.full"
FULL_MESSAGE_MODAL = "message.full.modal"

# --- the Tags modal (private_metadata = str(conversation.id)) ------------------------------------------
TAGS_MODAL = "tags.modal"
EXISTING_TAGS_BLOCK = "tags.existing"
EXISTING_TAGS_ACTION = "tags.existing.select"
NEW_TAGS_BLOCK = "tags.new"
NEW_TAGS_ACTION = "tags.new.input"

# --- the lead modal (private_metadata = str(conversation.id)) ------------------------------------------
LEAD_MODAL = "lead.modal"
LEAD_MODAL_EDIT = "lead.modal.edit"  # its Edit lead button (value = str(conversation.id)): views.push

# --- the Edit lead modal (private_metadata = str(conversation.id)); one input block per field, its
# block_id the field's name, its action_id LEAD_FIELD_ACTION --------------------------------------------
LEAD_EDIT_MODAL = "lead.edit"
LEAD_FIELD_ACTION = "lead.field"
LEAD_FIELDS = ("name", "company", "title", "email", "phone", "campaign")

# --- App Home (Take it's value = str(conversation.id)) -------------------------------------------------
HOME_TAKE = "home.take"
HOME_NOTIFICATIONS = "home.notifications"  # checkboxes; each selected option's value is one below
HOME_NOTIFICATIONS_BLOCK = "home.notifications"
NOTIFY_ON_ASSIGN = "assign"
NOTIFY_ON_MESSAGE = "message"

# --- the /leads list's paging buttons (value = JSON {"q": the command's text, "o": the page's offset}) ---
LEADS_PREVIOUS = "leads.previous"
LEADS_NEXT = "leads.next"
LEADS_PAGES_BLOCK = "leads.pages"

# --- an AI message in the thread (value = str(message.id) of the AI's message; its decision is found by
# ai_decision.reply_message_id): Why? opens the stored decision, 👍/👎 rate it, 👎 asks for a correction ---
AI_WHY = "ai.why"
AI_UP = "ai.feedback.up"
AI_DOWN = "ai.feedback.down"
AI_FEEDBACK_BLOCK = "ai.feedback"
AI_WHY_MODAL = "ai.why.modal"
# Why? on the AI's hand-off notice (value = str(ai_decision.id): a hand-off has no message of its own)
AI_WHY_DECISION = "ai.why_decision"
AI_HANDOFF_BLOCK = "ai.handoff"
# the correction modal (private_metadata = str(decision.id)); one input
AI_CORRECTION_MODAL = "ai.correction.modal"
AI_CORRECTION_BLOCK = "ai.correction"
AI_CORRECTION_ACTION = "ai.correction.input"
# a correction posted for review (value = str(knowledge_entry.id))
KNOWLEDGE_APPROVE = "knowledge.approve"
KNOWLEDGE_REJECT = "knowledge.reject"
KNOWLEDGE_REVIEW_BLOCK = "knowledge.review"
