"""`howto report`: a dataset card in Markdown and a static HTML page with plots, numbers from the catalog."""
