"""The Unpaired Edit library: models, samplers, cycle edits. Imports nothing from ComfyUI."""
