peer: ;
