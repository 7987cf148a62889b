# tests/model/encoders.cmake: tests of the frozen encoders (SigLIP, T5, tokenizer).
# Included by tests/model/CMakeLists.txt; paths are relative to this file so it
# also works when included from elsewhere.
set(ENC_DIR ${CMAKE_CURRENT_LIST_DIR})
rdt_test(NAME test_encoders_tokenizer SOURCES ${ENC_DIR}/encoders_tokenizer.c LIBS rdt_model TIMEOUT 60)
rdt_test(NAME test_encoders_siglip SOURCES ${ENC_DIR}/encoders_siglip.c LIBS rdt_model TIMEOUT 60)
rdt_test(NAME test_encoders_t5 SOURCES ${ENC_DIR}/encoders_t5.c LIBS rdt_model TIMEOUT 60)
rdt_test(NAME test_encoders_cmd SOURCES ${ENC_DIR}/encoders_cmd.c LIBS rdt_model TIMEOUT 120)
rdt_test(NAME test_encoders_real SOURCES ${ENC_DIR}/encoders_real.c LIBS rdt_model TIMEOUT 3600)
