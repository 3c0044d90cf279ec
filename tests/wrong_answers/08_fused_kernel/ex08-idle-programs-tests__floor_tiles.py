# Counts tiles with floor division, dropping the last, partial tile of rows.
def idle_programs(m, block_m, max_programs):
    if m == 0:
        return 0
    tiles = max(1, m // block_m)
    programs = min(tiles, max_programs)
    tiles_per_program = -(-tiles // programs)
    busy = -(-tiles // tiles_per_program)
    return programs - busy
