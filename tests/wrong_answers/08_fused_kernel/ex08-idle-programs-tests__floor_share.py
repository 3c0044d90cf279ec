# Shares the tiles with floor division: tiles // programs per program, so no program looks idle.
def idle_programs(m, block_m, max_programs):
    if m == 0:
        return 0
    tiles = -(-m // block_m)
    programs = min(tiles, max_programs)
    tiles_per_program = max(1, tiles // programs)
    busy = min(programs, -(-tiles // tiles_per_program))
    return programs - busy
