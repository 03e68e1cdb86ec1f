//! Report renderers of slogate: text, markdown, json and html.
