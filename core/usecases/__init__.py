"""The use cases: one module or package per user-facing area. Each receives the parts it needs
(a `Context` for sessions and the acting annotator, a model provider, project states), never the
whole Service. `core.service.Service` composes them."""
