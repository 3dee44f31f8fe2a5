"""The newsroom web app: signing in (`signin`) and the desk where a story is run (`desk`)."""
