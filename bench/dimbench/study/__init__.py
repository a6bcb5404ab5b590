"""The study: grids, designs, access arms, measurement, confirmation, run directories."""
